package registry

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/openrdap/rdap"
)

// FuzzParseWhois feeds arbitrary answers through the WHOIS parsing path:
// it must never panic, and whatever it accepts must normalise into a
// stable record.
func FuzzParseWhois(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "whois", "*.txt"))
	corpus, _ := filepath.Glob(filepath.Join("testdata", "whoiscorpus", "*.txt"))
	files = append(files, corpus...)
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
	f.Add("Domain registered: 12/18/2001\nRecord will expire on: 03/02/2020\n", "tk")
	f.Add("Registrar:\n    X t/a Y [Tag = Z]\n\nName servers:\n\n    ns1.x.example\n", "uk")
	f.Add("Record expires on 2021-12-09 12:30:05 (UTC+8)\nFecha de expiración: 23 de agosto de 2012 (10:10:08 GMT)\n", "tw")
	f.Add("domain: x.ua\n\nperson: X\nstatus: ok\ncreated: 2014-03-31 17:30:46+03\n", "ua")
	f.Add("You agree not to make excessive queries.\nToo many queries.\n", "com")
	f.Fuzz(func(t *testing.T, answer, tld string) {
		_ = isQuotaAnswer(answer)
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
		if len(wd.Registrar.Name) > 2*maxRegistrant {
			t.Fatalf("registrar not bounded: %d bytes", len(wd.Registrar.Name))
		}
		if len(wd.Notes) > 4 {
			t.Fatalf("%d parse notes", len(wd.Notes))
		}
		for _, n := range wd.Notes {
			if len(n) > 4*maxLineBytes {
				t.Fatalf("parse note not bounded: %d bytes", len(n))
			}
		}
		for _, d := range []time.Time{wd.Expiry, wd.Created, wd.Updated} {
			if !d.IsZero() && !plausibleYear(d.Year()) && !plausibleYear(d.Year()+1) && !plausibleYear(d.Year()-1) {
				t.Fatalf("implausible date %v", d)
			}
		}
		// Reading again gives the same record: nothing depends on map order.
		again, err := parseWhois(answer, tld)
		if err != nil || !again.Expiry.Equal(wd.Expiry) || again.Registrar.Name != wd.Registrar.Name || !slices.Equal(again.Notes, wd.Notes) {
			t.Fatalf("second reading differs: %v %+v / %+v", err, again, wd)
		}
	})
}

// FuzzParseDate feeds arbitrary text through the date reader with an
// arbitrary registry: no panic, and an accepted date is a real UTC time in
// the plausible range, the same on a second reading.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2014-Aug-22.", "20120630 #8516780", "2015. 03. 02.", "28/02/2015", "Mon Apr 25 23:59:59 GMT 2016",
		"01-Nov-21", "2021-12-09 12:30:05 (UTC+8)", "23 de agosto de 2012 (10:10:08 GMT)", "2011-07-23 15:43:32 (BRT -03:00)",
		"2020年5月19日", "4.7.2020 10:15:55", "2020-05-23 (YYYY-MM-DD)", "5/19/2020 3:04:05 PM", "2020-02-30", "2020-05-19T12:00:00.123456789+14:00"} {
		f.Add(s, "com")
		f.Add(s, "cn")
	}
	f.Fuzz(func(t *testing.T, s, tld string) {
		for _, order := range []dateOrder{orderUnknown, dayFirst, monthFirst} {
			ctx := newDateContext(tld)
			ctx.order = order
			p, ok := parseDate(s, ctx)
			if !ok {
				continue
			}
			if p.t.Location() != time.UTC || p.t.Year() < 1979 || p.t.Year() > 2200 {
				t.Fatalf("parseDate(%q) = %v", s, p.t)
			}
			if q, ok := parseDate(s, ctx); !ok || !q.t.Equal(p.t) {
				t.Fatalf("parseDate(%q) not deterministic: %v / %v", s, p.t, q.t)
			}
		}
		_ = labelHint(s)
		_, _, _ = splitLabel(s)
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
