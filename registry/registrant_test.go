package registry

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// registrantFromRaw reads records cached before Record.Registrant existed;
// it shares entityRegistrant and whoisRegistrant with the lookup, so these
// rows cover both.
func TestRegistrantFromRaw(t *testing.T) {
	registrantDoc := func(vcard string) string {
		return `{"objectClassName":"domain","ldhName":"x.com","entities":[{"objectClassName":"entity","roles":["registrar"],"vcardArray":["vcard",[["fn",{},"text","MarkMonitor Inc."]]]},` +
			`{"objectClassName":"entity","roles":["registrant"],"vcardArray":["vcard",[["version",{},"text","4.0"]` + vcard + `]]}]}`
	}
	registry := `{"objectClassName":"domain","ldhName":"x.com","entities":[{"objectClassName":"entity","roles":["registrar"],"vcardArray":["vcard",[["fn",{},"text","MarkMonitor Inc."]]]}]}`
	tests := []struct {
		name, source, raw, want string
	}{
		{"no raw", SourceRDAP, "", ""},
		{"RDAP: registry then registrar document, org of the registrant entity", SourceRDAP,
			registry + "\n\n" + registrantDoc(`,["fn",{},"text",""],["org",{},"text","Example Shop Ltd"]`), "Example Shop Ltd"},
		{"RDAP: the registrar's answer wins over the registry's", SourceRDAP,
			registrantDoc(`,["org",{},"text","Registry View Ltd"]`) + "\n\n" + registrantDoc(`,["org",{},"text","Registrar View Ltd"]`), "Registrar View Ltd"},
		{"RDAP: fn when there is no org", SourceRDAP,
			`{"objectClassName":"domain","entities":[{"objectClassName":"entity","roles":["administrative","registrant"],"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Jane Doe"]]]}]}`, "Jane Doe"},
		{"RDAP: fn when org is redacted", SourceRDAP,
			registrantDoc(`,["fn",{},"text","Jane Doe"],["org",{},"text","REDACTED FOR PRIVACY"]`), "Jane Doe"},
		{"RDAP: structured org names the organisation first", SourceRDAP,
			registrantDoc(`,["org",{},"text",["Example Shop Ltd","DNS team"]]`), "Example Shop Ltd"},
		{"RDAP: redacted", SourceRDAP, registrantDoc(`,["org",{},"text","REDACTED FOR PRIVACY"]`), ""},
		{"RDAP: registrant nested under another entity", SourceRDAP,
			`{"objectClassName":"domain","entities":[{"objectClassName":"entity","roles":["registrar"],"entities":[{"objectClassName":"entity","roles":["registrant"],"vcardArray":["vcard",[["version",{},"text","4.0"],["org",{},"text","Nested Ltd"]]]}]}]}`, "Nested Ltd"},
		{"RDAP: truncated answer", SourceRDAP, `{"entities":[{"roles":["regis`, ""},
		{"RDAP: not JSON at all", SourceRDAP, "Registrant Organization: Not Read", ""},
		{"RDAP fixture: registry's answer has none", SourceRDAP, readFixture(t, "rdap/registry.json"), ""},
		{"RDAP fixtures: registry then registrar", SourceRDAP,
			readFixture(t, "rdap/registry.json") + "\n\n" + readFixture(t, "rdap/registrar.json"), "Example Shop Ltd"},
		{"thick WHOIS", SourceWHOIS,
			"Domain Name: x.com\nRegistrant Name: Jane Doe\nRegistrant Organization: Example Group plc\nRegistrant Country: US\n", "Example Group plc"},
		{"British spelling", SourceWHOIS, "Registrant Name: Jane Doe\nRegistrant Organisation: Example Group plc\n", "Example Group plc"},
		{"a person's name when there is no organisation", SourceWHOIS, "Registrant Name: Jane Doe\nRegistrant Country: US\n", "Jane Doe"},
		{"CNNIC", SourceWHOIS,
			"Domain Name: x.cn\nRegistrant: Example Shop (Shanghai) Co., Ltd.\nRegistrant Contact Email: a@x.cn\n", "Example Shop (Shanghai) Co., Ltd."},
		// JPRS's Japanese layout prints both names; the English one
		// compares with the backup's registrant at other registries.
		{"JPRS, Japanese layout", SourceWHOIS,
			"Domain Information: [ドメイン情報]\n[Domain Name]                   EXAMPLE.JP\n\n[登録者名]                      株式会社エグザンプル\n[Registrant]                    Example Co., Ltd.\n", "Example Co., Ltd."},
		{"JPRS, Japanese name only", SourceWHOIS, "[ドメイン名]                    EXAMPLE.JP\n[登録者名]                      株式会社エグザンプル\n", "株式会社エグザンプル"},
		{"WHOIS privacy service", SourceWHOIS, "Registrant Organization: Data Protected\nRegistrant Name: REDACTED\n", ""},
		{"WHOIS: a header with the value on the next line (Nominet)", SourceWHOIS, "Registrant:\n    Example Ltd\n", "Example Ltd"},
		{"thin registry then registrar", SourceWHOIS,
			readFixture(t, "whois/verisign-thin.txt") + "\n\n% registrar whois.markmonitor.com\n" + readFixture(t, "whois/registrar-thick.txt"), "Example Shop Ltd"},
		{"JPRS fixture", SourceWHOIS, readFixture(t, "whois/jprs.txt"), "Example Shop Ltd"},
		{"DENIC publishes none", SourceWHOIS, readFixture(t, "whois/denic.txt"), ""},
	}
	for _, tc := range tests {
		if got := registrantFromRaw(tc.source, tc.raw); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A registrant is a name: a hostile server's megabyte-long line is cut to
// maxRegistrant bytes without splitting a character.
func TestRegistrantBounded(t *testing.T) {
	long := strings.Repeat("株", 200) // 600 bytes
	wd, err := parseWhois(readFixture(t, "whois/cnnic.txt")+"\nRegistrant Organization: "+long+"\n", "cn")
	if err != nil {
		t.Fatal(err)
	}
	r := Record{Domain: "example.cn", Registrant: wd.Registrant}
	r.normalise()
	if len(r.Registrant) > maxRegistrant || !utf8.ValidString(r.Registrant) || !strings.HasPrefix(long, r.Registrant) || len(r.Registrant) < maxRegistrant-3 {
		t.Errorf("registrant bounded to %d bytes (valid UTF-8 %v), want at most %d", len(r.Registrant), utf8.ValidString(r.Registrant), maxRegistrant)
	}
}
