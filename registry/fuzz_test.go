package registry

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openrdap/rdap"
)

// FuzzParseWhois feeds arbitrary answers through the WHOIS parsing path:
// it must never panic, and whatever it accepts must normalise into a
// stable record.
func FuzzParseWhois(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "whois", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, tld := range []string{"com", "cn", "de", "jp", "org"} {
			f.Add(string(b), tld)
		}
	}
	f.Add("Domain Name: x.com\nRegistry Expiry Date: 9999-99-99\nDomain Status: clientHold\n", "com")
	f.Add("[Expires on] 2026/02/30\n[Domain Name] X.JP\n", "jp")
	f.Fuzz(func(t *testing.T, answer, tld string) {
		wd, err := parseWhois(answer, tld)
		if _, ierr := parseIANATLD(tld, answer); ierr == nil && strings.TrimSpace(answer) == "" {
			t.Fatal("empty IANA answer accepted")
		}
		if err != nil {
			return
		}
		rec := &Record{Domain: "x." + tld, Statuses: wd.Statuses, OtherStatuses: wd.Other, Nameservers: wd.NS,
			RegistryExpiry: wd.Expiry, Created: wd.Created, DNSSEC: wd.DNSSEC, Raw: answer, Registrant: wd.Registrant}
		rec.normalise()
		if !slices.IsSorted(rec.Statuses) || !slices.IsSorted(rec.Nameservers) || !slices.IsSorted(rec.OtherStatuses) {
			t.Fatalf("not sorted: %+v", rec)
		}
		for _, s := range rec.Statuses {
			if v, ok := NormaliseStatus(s, false); !ok || v != s {
				t.Fatalf("status %q is not EPP", s)
			}
		}
		if len(rec.Raw) > MaxRaw+64 {
			t.Fatalf("raw not bounded: %d", len(rec.Raw))
		}
		if !rec.Expiry.IsZero() && rec.Expiry.Location().String() != "UTC" {
			t.Fatalf("expiry not UTC: %v", rec.Expiry)
		}
		_ = utf8.ValidString(rec.Registrar.Name)
		if len(rec.Registrant) > maxRegistrant || !utf8.ValidString(rec.Registrant) {
			t.Fatalf("registrant not bounded: %d bytes, valid UTF-8 %v", len(rec.Registrant), utf8.ValidString(rec.Registrant))
		}
	})
}

// FuzzParseRDAP feeds arbitrary JSON through openrdap's decoder and
// nsguard's reading of the domain object.
func FuzzParseRDAP(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "rdap", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"objectClassName":"domain","status":["client hold",""],"events":[{"eventAction":"expiration","eventDate":"x"}],"secureDNS":{"delegationSigned":true,"dsData":[{"keyTag":1}]},"redacted":[1,{"name":2},{"name":{"type":3}}]}`))
	f.Add([]byte(`{"objectClassName":"domain","entities":[{"roles":["registrar"],"vcardArray":["vcard",[["fn",{},"text"]]],"entities":[{"roles":["abuse"],"vcardArray":["vcard",[]]}]}],"links":[{"rel":"related","href":"::"}]}`))
	f.Add([]byte(`{"objectClassName":"domain","entities":[{"roles":["registrant"],"vcardArray":["vcard",[["org",{},"text",[["deep"]]],["fn",{},"text",7]]],"entities":[{"roles":["registrant"]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Old disk cache entries: the raw answers, read for the registrant.
		_ = registrantFromRaw(SourceRDAP, string(data)+"\n\n"+string(data))
		obj, err := rdap.NewDecoder(data).Decode()
		if err != nil {
			return
		}
		d, ok := obj.(*rdap.Domain)
		if !ok {
			return
		}
		out := fromRDAP(d)
		for _, s := range out.Statuses {
			if v, ok := NormaliseStatus(s, false); !ok || v != s {
				t.Fatalf("status %q is not EPP", s)
			}
		}
		if l := out.RegistrarLink; l != nil && l.Scheme != "http" && l.Scheme != "https" {
			t.Fatalf("registrar link scheme %q", l.Scheme)
		}
	})
}
