package registry

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openrdap/rdap"
)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every RFC 8056 RDAP status value and its EPP name, plus WHOIS spellings.
func TestNormaliseStatus(t *testing.T) {
	rfc8056 := map[string]string{
		"add period": "addPeriod", "auto renew period": "autoRenewPeriod",
		"client delete prohibited": "clientDeleteProhibited", "client hold": "clientHold",
		"client renew prohibited": "clientRenewProhibited", "client transfer prohibited": "clientTransferProhibited",
		"client update prohibited": "clientUpdateProhibited", "inactive": "inactive", "active": "ok",
		"pending create": "pendingCreate", "pending delete": "pendingDelete", "pending renew": "pendingRenew",
		"pending restore": "pendingRestore", "pending transfer": "pendingTransfer", "pending update": "pendingUpdate",
		"redemption period": "redemptionPeriod", "renew period": "renewPeriod",
		"server delete prohibited": "serverDeleteProhibited", "server renew prohibited": "serverRenewProhibited",
		"server transfer prohibited": "serverTransferProhibited", "server update prohibited": "serverUpdateProhibited",
		"server hold": "serverHold", "transfer period": "transferPeriod",
	}
	for in, want := range rfc8056 {
		if got, ok := NormaliseStatus(in, true); !ok || got != want {
			t.Errorf("NormaliseStatus(%q, rdap) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, tc := range []struct {
		in       string
		fromRDAP bool
		want     string
		ok       bool
	}{
		{"clientTransferProhibited https://icann.org/epp#clientTransferProhibited", false, "clientTransferProhibited", true},
		{"serverHold (https://www.icann.org/epp#serverHold)", false, "serverHold", true},
		{"CLIENT TRANSFER PROHIBITED", false, "clientTransferProhibited", true},
		{"ok", false, "ok", true},
		{"Active", false, "Active", false}, // JPRS: its own word, not EPP ok
		{"connect", false, "connect", false},
		{"locked", true, "locked", false},
		{"transfer prohibited", true, "transfer prohibited", false},
		{"", true, "", false},
	} {
		got, ok := NormaliseStatus(tc.in, tc.fromRDAP)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormaliseStatus(%q, %v) = %q, %v; want %q, %v", tc.in, tc.fromRDAP, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseRegistryDate(t *testing.T) {
	for _, tc := range []struct {
		in, tld string
		want    string // RFC 3339 UTC, "" = not parsed
	}{
		{"2027-01-06T19:00:00Z", "com", "2027-01-06T19:00:00Z"},
		{"2028-09-13T00:00:00-0700", "com", "2028-09-13T07:00:00Z"},
		{"2026-03-17T12:48:36.123+02:00", "", "2026-03-17T10:48:36Z"},
		{"2021-03-17 12:48:36", "cn", "2021-03-17T04:48:36Z"}, // CNNIC: Beijing time
		{"2021-03-17 12:48:36", "com", "2021-03-17T12:48:36Z"},
		{"2018/05/31", "jp", "2018-05-30T15:00:00Z"}, // JPRS: midnight JST
		{"2017/06/01 01:05:09 (JST)", "com", "2017-05-31T16:05:09Z"},
		{"15-Sep-1997", "com", "1997-09-15T00:00:00Z"},
		{"2026-01-06 10:00:00 CST", "com", "2026-01-06T16:00:00Z"}, // US Central outside Chinese registries
		{"2026-01-06 10:00:00 CST", "cn", "2026-01-06T02:00:00Z"},  // China Standard Time
		{"next tuesday", "com", ""},
		{"", "com", ""},
	} {
		got, ok := parseRegistryDate(tc.in, tc.tld)
		gs := ""
		if ok {
			gs = got.Format(time.RFC3339)
		}
		if gs != tc.want {
			t.Errorf("parseRegistryDate(%q, %q) = %q, want %q", tc.in, tc.tld, gs, tc.want)
		}
	}
}

func TestParseWhoisFormats(t *testing.T) {
	utc := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for _, tc := range []struct {
		file, tld  string
		registrar  Registrar
		statuses   int
		other      []string
		expiry     time.Time
		ns         []string
		signed     bool
		referral   string
		hasCreated bool
		registrant string
	}{
		{file: "verisign-thin.txt", tld: "com",
			registrar: Registrar{Name: "MarkMonitor Inc.", IANAID: "292", AbuseEmail: "abusecomplaints@markmonitor.com", AbusePhone: "+1.2086851750", URL: "http://www.markmonitor.com"},
			statuses:  6, expiry: utc("2027-01-06T19:00:00Z"), ns: []string{"ns1.shop-example-dns.net", "ns2.shop-example-dns.org"},
			signed: true, referral: "whois.markmonitor.com", hasCreated: true}, // thin: no registrant
		{file: "registrar-thick.txt", tld: "com",
			registrar: Registrar{Name: "MarkMonitor Inc.", IANAID: "292", AbuseEmail: "abusecomplaints@markmonitor.com", AbusePhone: "+1.2086851750", URL: "http://www.markmonitor.com"},
			statuses:  6, expiry: utc("2026-12-06T19:00:00Z"), ns: []string{"ns1.shop-example-dns.net", "ns2.shop-example-dns.org"},
			signed: true, referral: "whois.markmonitor.com", hasCreated: true, registrant: "Example Shop Ltd"},
		{file: "pir.txt", tld: "org",
			registrar: Registrar{Name: "MarkMonitor Inc.", IANAID: "292", AbuseEmail: "abusecomplaints@markmonitor.com", AbusePhone: "+1.2086851750", URL: "http://www.markmonitor.com"},
			statuses:  6, expiry: utc("2027-01-06T19:00:00Z"), ns: []string{"ns1.example-dns.net", "ns2.example-dns.org"}, hasCreated: true, registrant: "Example Shop Ltd"},
		{file: "cnnic.txt", tld: "cn", registrar: Registrar{Name: "Alibaba Cloud Computing (Beijing) Co., Ltd."},
			statuses: 6, expiry: utc("2027-01-06T19:00:00Z"), ns: []string{"ns1.example-dns.net", "ns2.example-dns.org"}, hasCreated: true, registrant: "Example Shop Ltd"},
		{file: "denic.txt", tld: "de", other: []string{"connect"}, ns: []string{"ns1.example-dns.net", "ns2.example-dns.org"}},
		{file: "jprs.txt", tld: "jp", other: []string{"Active", "DomainTransferLocked", "AgentChangeLocked"},
			expiry: utc("2027-01-06T15:00:00Z"), ns: []string{"ns1.example-dns.net", "ns2.example-dns.org"}, hasCreated: true, registrant: "Example Shop Ltd"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			wd, err := parseWhois(readFixture(t, "whois/"+tc.file), tc.tld)
			if err != nil {
				t.Fatal(err)
			}
			if wd.Registrar != tc.registrar {
				t.Errorf("registrar = %+v, want %+v", wd.Registrar, tc.registrar)
			}
			if len(wd.Statuses) != tc.statuses {
				t.Errorf("statuses = %v, want %d EPP statuses", wd.Statuses, tc.statuses)
			}
			if !slices.Equal(wd.Other, tc.other) {
				t.Errorf("other statuses = %v, want %v", wd.Other, tc.other)
			}
			if !wd.Expiry.Equal(tc.expiry) {
				t.Errorf("expiry = %v, want %v", wd.Expiry, tc.expiry)
			}
			if !slices.Equal(sortedUnique(lower(wd.NS)), tc.ns) {
				t.Errorf("ns = %v, want %v", wd.NS, tc.ns)
			}
			if wd.DNSSEC.DelegationSigned != tc.signed {
				t.Errorf("signed = %v, want %v", wd.DNSSEC.DelegationSigned, tc.signed)
			}
			if wd.Referral != tc.referral {
				t.Errorf("referral = %q, want %q", wd.Referral, tc.referral)
			}
			if wd.Created.IsZero() == tc.hasCreated {
				t.Errorf("created = %v, want set=%v", wd.Created, tc.hasCreated)
			}
			if wd.Registrant != tc.registrant {
				t.Errorf("registrant = %q, want %q", wd.Registrant, tc.registrant)
			}
		})
	}
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = canonicalHost(s)
	}
	return out
}

func TestParseWhoisRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, answer, tld string
		want              error
	}{
		{"verisign no match", readFixture(t, "whois/verisign-notfound.txt"), "com", ErrNotRegistered},
		{"cnnic no match", readFixture(t, "whois/cnnic-notfound.txt"), "cn", ErrNotRegistered},
		{"denic free", readFixture(t, "whois/denic-free.txt"), "de", ErrNotRegistered},
		{"jprs no match", readFixture(t, "whois/jprs-notfound.txt"), "jp", ErrNotRegistered},
		{"pir quota", "WHOIS LIMIT EXCEEDED - SEE WWW.PIR.ORG/WHOIS FOR DETAILS\r\n", "org", ErrRateLimited},
		{"godaddy quota", "Number of allowed queries exceeded.\r\n", "com", ErrRateLimited},
		{"cnnic interval", "Queried interval is too short.\r\n", "cn", ErrRateLimited},
		{"garbage", "\x00\x01\x02\xff\xfe binary \x1b[31m noise \xc3\x28 ::: [[[ ]]]", "com", ErrMalformed},
		{"empty", "  \r\n", "com", ErrMalformed},
		{"html error page", "<html><body>502 Bad Gateway</body></html>", "com", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWhois(tc.answer, tc.tld)
			if !errors.Is(err, tc.want) {
				t.Fatalf("parseWhois = %v, want %v", err, tc.want)
			}
		})
	}
}

// A long answer that merely mentions limits in its terms is a record.
func TestQuotaPhraseInTermsIsNotARefusal(t *testing.T) {
	answer := readFixture(t, "whois/verisign-thin.txt") + "\nYou agree not to exceed our query limit; access control limit reached messages mean slow down.\n"
	if _, err := parseWhois(answer, "com"); err != nil {
		t.Fatalf("parseWhois = %v, want a record", err)
	}
}

func TestParseIANATLD(t *testing.T) {
	info, err := parseIANATLD("com", readFixture(t, "whois/iana-com.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Organisation != "VeriSign Global Registry Services" || info.Whois != "whois.verisign-grs.com" ||
		info.Admin.Email != "info@verisign-grs.com" || info.Tech.Phone != "+1 703 925-6999" ||
		info.Admin.Name != "Registry Customer Service" || info.RegistrationURL != "https://nic.com/" {
		t.Errorf("parsed %+v", info)
	}
	if _, err := parseIANATLD("zz", readFixture(t, "whois/iana-none.txt")); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("unknown TLD: err = %v, want ErrNotRegistered", err)
	}
	if _, err := parseIANATLD("com", "\x00garbage\xff"); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: err = %v, want ErrMalformed", err)
	}
}

func TestFromRDAP(t *testing.T) {
	decode := func(file string) *rdap.Domain {
		obj, err := rdap.NewDecoder([]byte(readFixture(t, file))).Decode()
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*rdap.Domain)
	}
	reg := fromRDAP(decode("rdap/registry.json"))
	if reg.Registrar.Name != "MarkMonitor Inc." || reg.Registrar.IANAID != "292" ||
		reg.Registrar.AbuseEmail != "abusecomplaints@markmonitor.com" || reg.Registrar.AbusePhone != "+1.2086851750" {
		t.Errorf("registrar = %+v", reg.Registrar)
	}
	if len(reg.Statuses) != 6 || len(reg.Other) != 0 {
		t.Errorf("statuses = %v other %v", reg.Statuses, reg.Other)
	}
	if got := reg.Expiry.Format(time.RFC3339); got != "2027-01-06T19:00:00Z" {
		t.Errorf("expiry = %s", got)
	}
	if !reg.DNSSEC.DelegationSigned || len(reg.DNSSEC.DS) != 1 || !strings.HasPrefix(reg.DNSSEC.DS[0], "12345 13 2 3A0B") {
		t.Errorf("dnssec = %+v", reg.DNSSEC)
	}
	if reg.RegistrarLink == nil || reg.RegistrarLink.String() != "https://rdap.markmonitor.com/rdap/domain/SHOP-EXAMPLE.COM" {
		t.Errorf("registrar link = %v", reg.RegistrarLink)
	}
	rr := fromRDAP(decode("rdap/registrar.json"))
	if got := rr.Expiry.Format(time.RFC3339); got != "2026-12-06T19:00:00Z" {
		t.Errorf("registrar expiry = %s", got)
	}
	if !slices.Equal(sortedUnique(rr.Redacted), []string{"Registrant Email", "Registrant Name"}) {
		t.Errorf("redacted = %v", rr.Redacted)
	}
	if rr.RegistrarLink != nil {
		t.Errorf("registrar's own answer links on to %v", rr.RegistrarLink)
	}
	// The registry's answer has no registrant; the registrar's has the org
	// beside a redacted (empty) fn.
	if reg.Registrant != "" || rr.Registrant != "Example Shop Ltd" {
		t.Errorf("registrant: registry %q, registrar %q; want \"\" and Example Shop Ltd", reg.Registrant, rr.Registrant)
	}
}

func TestRegistrarApproved(t *testing.T) {
	mm := Registrar{Name: "MarkMonitor, Inc.", IANAID: "292"}
	for _, tc := range []struct {
		r        Registrar
		approved []string
		want     bool
	}{
		{mm, []string{"MarkMonitor Inc."}, true},
		{mm, []string{"markmonitor"}, true},
		{mm, []string{"292"}, true},
		{mm, []string{"0292"}, true},
		{mm, []string{"293", "CSC Corporate Domains, Inc."}, false},
		{Registrar{Name: "Evil Registrar Ltd", IANAID: "9999"}, []string{"MarkMonitor Inc.", "292"}, false},
		{Registrar{Name: "Key-Systems GmbH"}, []string{"Key Systems"}, true},
		{Registrar{Name: "Gandi SAS"}, []string{"Gandi S.A.S."}, true},
		{Registrar{Name: "Inc."}, []string{"Inc"}, true}, // a suffix alone is kept, not emptied
		{Registrar{IANAID: "292"}, []string{"MarkMonitor Inc."}, false},
	} {
		if got := registrarApproved(tc.r, tc.approved); got != tc.want {
			t.Errorf("registrarApproved(%+v, %v) = %v, want %v", tc.r, tc.approved, got, tc.want)
		}
	}
}

func TestCleanReferral(t *testing.T) {
	for in, want := range map[string]string{
		"whois.markmonitor.com":         "whois.markmonitor.com",
		"WHOIS.MarkMonitor.com ":        "whois.markmonitor.com",
		"whois://whois.example.net:43/": "whois.example.net:43",
		"http://whois.example.net/x":    "whois.example.net",
		"127.0.0.1:4343":                "127.0.0.1:4343",
	} {
		if got := cleanReferral(in); got != want {
			t.Errorf("cleanReferral(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckReferral(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", true},
		{"::1", "127.0.0.1", true},
		{"127.0.0.1", "whois.markmonitor.com", false},
		{"127.0.0.1", "192.0.2.1", false},
		{"whois.verisign-grs.com", "whois.markmonitor.com", true},
	} {
		if err := checkReferral(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("checkReferral(%q, %q) = %v, want ok=%v", tc.from, tc.to, err, tc.ok)
		}
	}
}
