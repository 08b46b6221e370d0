package reglab

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func startLab(t *testing.T) *Lab {
	t.Helper()
	l, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	l.SeedDemo(time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC))
	return l
}

func whois(t *testing.T, addr, q string) string {
	t.Helper()
	c, err := DialLoopback(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, q+"\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := HTTPClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestBootstrapListsRDAPTLDsOnly(t *testing.T) {
	l := startLab(t)
	_, body := get(t, l.BootstrapURL())
	var doc struct{ Services [][][]string }
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var tlds []string
	for _, s := range doc.Services {
		tlds = append(tlds, s[0]...)
		if !strings.HasPrefix(s[1][0], "http://127.0.0.1:") {
			t.Errorf("service URL %q is not a loopback literal", s[1][0])
		}
	}
	if strings.Join(tlds, ",") != "com,net,org" {
		t.Errorf("bootstrap TLDs = %v", tlds)
	}
}

func TestRDAPAnswers(t *testing.T) {
	l := startLab(t)
	resp, body := get(t, l.RDAPBase("com")+"domain/shop-example.com")
	if resp.StatusCode != 200 || !strings.Contains(body, `"server transfer prohibited"`) ||
		!strings.Contains(body, l.RegistrarRDAPBase()+"domain/SHOP-EXAMPLE.COM") {
		t.Errorf("registry answer %d: %s", resp.StatusCode, body)
	}
	_, body = get(t, l.RegistrarRDAPBase()+"domain/SHOP-EXAMPLE.COM")
	if !strings.Contains(body, `"redacted"`) || !strings.Contains(body, `"Registrant Name"`) {
		t.Errorf("registrar answer lacks redactions: %s", body)
	}
	if resp, _ := get(t, l.RDAPBase("org")+"domain/shop-example.com"); resp.StatusCode != 404 {
		t.Errorf("wrong TLD base answered %d", resp.StatusCode)
	}
	l.Update("shop-example.com", func(d *Domain) { d.RDAP, d.RetryAfter = RateLimited, "7" })
	if resp, _ := get(t, l.RDAPBase("com")+"domain/shop-example.com"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("rate limited: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	l.Update("shop-example.com", func(d *Domain) { d.RDAP = Malformed })
	if _, body := get(t, l.RDAPBase("com")+"domain/shop-example.com"); json.Valid([]byte(body)) {
		t.Errorf("malformed answer is valid JSON: %s", body)
	}
}

func TestWhoisFormats(t *testing.T) {
	l := startLab(t)
	for _, tc := range []struct{ q, want string }{
		{"shop-example.com", "Registrar WHOIS Server: " + l.RegistrarWhoisAddr()},
		{"example.org", "Registry Expiry Date: 2027-01-06T12:00:00Z"},
		{"example.cn", "Expiration Time: 2027-01-06 20:00:00"},
		{"example.de", "Status: connect"},
		{"example.jp", "[Expires on]                    2027/01/06"},
		{"nothing.com", `No match for "NOTHING.COM".`},
	} {
		if got := whois(t, l.WhoisAddr(), tc.q); !strings.Contains(got, tc.want) {
			t.Errorf("%s: answer lacks %q:\n%s", tc.q, tc.want, got)
		}
	}
	if got := whois(t, l.IANAWhoisAddr(), "cn"); !strings.Contains(got, "whois:        "+l.WhoisAddr()) ||
		!strings.Contains(got, "This query returned 1 object") {
		t.Errorf("IANA answer:\n%s", got)
	}
	if got := whois(t, l.RegistrarWhoisAddr(), "shop-example.com"); !strings.Contains(got, "Registrar Registration Expiration Date: 2027-01-06T05:00:00-0700") {
		t.Errorf("registrar answer:\n%s", got)
	}
}

func TestWhoisMisbehaviour(t *testing.T) {
	l := startLab(t)
	l.Update("example.cn", func(d *Domain) { d.WHOIS = RateLimited })
	if got := whois(t, l.WhoisAddr(), "example.cn"); !strings.Contains(got, "Queried interval is too short") {
		t.Errorf("rate limit answer: %q", got)
	}
	l.Update("example.cn", func(d *Domain) { d.WHOIS = Huge })
	if got := whois(t, l.WhoisAddr(), "example.cn"); len(got) < HugeSize {
		t.Errorf("huge answer is %d bytes", len(got))
	}
	// A hanging connection stays open until the lab closes.
	l.Update("example.cn", func(d *Domain) { d.WHOIS = Hang })
	c, err := DialLoopback(context.Background(), "tcp", l.WhoisAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "example.cn\r\n")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("hang answered: %d %v", n, err)
	}
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a hanging connection")
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection not closed by Close: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestDialLoopbackRefusesTheWorld(t *testing.T) {
	for _, addr := range []string{"whois.iana.org:43", "localhost:43", "192.0.2.1:43", "[2001:db8::1]:43", "nonsense"} {
		if c, err := DialLoopback(context.Background(), "tcp", addr); err == nil {
			c.Close()
			t.Errorf("dialled %s", addr)
		}
	}
	if _, err := HTTPClient().Get("http://example.com/"); err == nil || !strings.Contains(err.Error(), "only loopback") {
		t.Errorf("HTTP to a host name: %v", err)
	}
}

func TestRDAPStatusSpelling(t *testing.T) {
	for in, want := range map[string]string{
		"clientTransferProhibited": "client transfer prohibited", "ok": "active",
		"redemptionPeriod": "redemption period", "inactive": "inactive",
	} {
		if got := rdapStatus(in); got != want {
			t.Errorf("rdapStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUpdateUnknownDomain(t *testing.T) {
	l := startLab(t)
	if err := l.Update("nope.com", func(*Domain) {}); err == nil {
		t.Error("update of an unknown domain succeeded")
	}
	l.RemoveDomain("example.org")
	if _, ok := l.Domain("example.org"); ok {
		t.Error("removed domain still there")
	}
}
