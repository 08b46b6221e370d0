package pages_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/lab/reglab"
	"github.com/nsguard/nsguard/pages"
)

// Every page answers on the daemon's port with the security headers, and
// the healthy, approved lab is all ok.
func TestEveryPageServesWithSecurityHeaders(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.approveAll()
	r.start()
	r.waitFor(10*time.Second, "every domain ok on the overview", func() bool {
		_, _, body := r.get("/")
		return strings.Count(body, `data-state="ok"`) == len(r.cfg.Domains)
	})
	for _, path := range []string{"/", "/?tier=0", "/domains/shop-example.com", "/incidents", "/audit", "/failover"} {
		status, h, body := r.get(path)
		if status != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", path, status, body)
			continue
		}
		checkHeaders(t, path, h)
		if !strings.Contains(body, "<title>") || !strings.Contains(body, "<main") {
			t.Errorf("GET %s: no title or main", path)
		}
	}
	// /metrics and the probes are untouched.
	if status, _, body := r.get("/metrics"); status != 200 || !strings.Contains(body, "nsguard_cycles_total") {
		t.Errorf("/metrics: %d", status)
	}
}

func checkHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": pages.CSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", path, k, got, want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "script-src") && !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("%s: the CSP allows scripts", path)
	}
}

var unescaped = regexp.MustCompile(`(?i)<script|<img`)

// Only GET and HEAD; hostile paths and queries are never reflected as
// markup.
func TestMethodsAndHostileRequests(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.start()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "PROPFIND"} {
		for _, path := range []string{"/", "/domains/shop-example.com", "/nowhere"} {
			status, h, _ := r.do(m, path, nil)
			if status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, Allow %q; want 405, GET, HEAD", m, path, status, h.Get("Allow"))
			}
		}
	}
	if status, h, body := r.do(http.MethodHead, "/", nil); status != 200 || body != "" || h.Get("Content-Security-Policy") == "" {
		t.Errorf("HEAD /: %d, %d bytes", status, len(body))
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/domains/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404},
		{"/domains/x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 404},
		{"/%3Cscript%3Ealert(1)%3C/script%3E", 404},
		{"/incidents/%3Cscript%3E", 404},
		{"/incidents/99999", 404},
		{"/?owner=%3Cscript%3Ealert(1)%3C/script%3E&tier=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E&state=%3Cscript%3E&page=%3Cscript%3E", 200},
		{"/incidents?page=%3Cscript%3E", 200},
		{"/failover?page=-1%3Cscript%3E", 200},
	} {
		status, h, body := r.get(tc.path)
		if status != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, status, tc.status)
		}
		checkHeaders(t, tc.path, h)
		if unescaped.MatchString(body) {
			t.Errorf("GET %s reflects markup:\n%s", tc.path, body)
		}
	}
	_, _, body := r.get("/domains/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the 404 does not name the domain asked, escaped:\n%s", body)
	}
}

// Text from the network — a WHOIS/RDAP registrar name and a DNS record —
// arrives escaped on every page that shows it.
func TestHostileNetworkTextIsEscaped(t *testing.T) {
	r := newRig(t, rigOptions{})
	// Before the approval: the registry client caches what it read then.
	const evil = `<script>alert("whois")</script>`
	if err := r.env.Reg.Update("shop-example.com", func(d *reglab.Domain) { d.Registrar = evil }); err != nil {
		t.Fatal(err)
	}
	r.approveAll()
	if err := r.env.DNS.ChangeRecord(context.Background(), "shop-example.com", "", `www.shop-example.com. 300 IN CNAME x<script>alert2</script>.attacker.net.`); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.waitFor(15*time.Second, "the hostile record on the domain page", func() bool {
		_, _, body := r.get("/domains/shop-example.com")
		return strings.Contains(body, "RECORD_CHANGED") && strings.Contains(body, "REGISTRAR_NOT_APPROVED")
	})
	r.waitFor(15*time.Second, "an incident", func() bool {
		_, _, body := r.get("/incidents")
		return strings.Contains(body, "shop-example.com")
	})
	for _, path := range []string{"/", "/domains/shop-example.com", "/incidents", "/incidents/1", "/audit"} {
		_, _, body := r.get(path)
		if unescaped.MatchString(body) {
			i := unescaped.FindStringIndex(body)[0]
			t.Errorf("%s: unescaped markup from the network: …%s…", path, body[max(0, i-200):min(len(body), i+200)])
		}
	}
	_, _, body := r.get("/domains/shop-example.com")
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;whois&#34;)&lt;/script&gt;") {
		t.Errorf("the registrar name is not shown escaped")
	}
	if !strings.Contains(body, "x&lt;script&gt;alert2&lt;/script&gt;.attacker.net.") {
		t.Errorf("the record is not shown escaped: %s", regexp.MustCompile(`x[^ ]*attacker[^ ]*`).FindAllString(body, -1))
	}
}
