package pages_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func htpasswdLine(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

func basic(user, pass string) http.Header {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

// With ui.basic_auth_file every page asks for a password; the probes and
// /metrics stay open; a changed file takes effect without a restart.
func TestBasicAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(file, []byte("# on-call\n"+htpasswdLine(t, "alice", "correct horse")), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{UI: "  basic_auth_file: " + file + "\n"})
	r.start()
	for _, tc := range []struct {
		name   string
		path   string
		hdr    http.Header
		status int
	}{
		{"no credentials", "/", nil, 401},
		{"wrong password", "/", basic("alice", "wrong"), 401},
		{"unknown user", "/", basic("mallory", "correct horse"), 401},
		{"empty password", "/audit", basic("alice", ""), 401},
		{"right password", "/", basic("alice", "correct horse"), 200},
		{"right password, cached", "/domains/shop-example.com", basic("alice", "correct horse"), 200},
		{"stylesheet needs it too", "/static/none.css", nil, 401},
		{"metrics stay open", "/metrics", nil, 200},
		{"healthz stays open", "/healthz", nil, 200},
	} {
		status, h, body := r.do(http.MethodGet, tc.path, tc.hdr)
		if status != tc.status {
			t.Errorf("%s: %s → %d, want %d", tc.name, tc.path, status, tc.status)
		}
		if status == 401 {
			if h.Get("WWW-Authenticate") != `Basic realm="nsguard", charset="UTF-8"` {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, h.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, "shop-example.com") {
				t.Errorf("%s: a refused request shows data", tc.name)
			}
		}
	}
	// Rotate the password: the old one stops working, the new one works.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(file, []byte(htpasswdLine(t, "alice", "battery staple")+htpasswdLine(t, "bob", "hunter2 hunter2")), 0o600); err != nil {
		t.Fatal(err)
	}
	r.waitFor(10*time.Second, "the new password file", func() bool {
		st, _, _ := r.do(http.MethodGet, "/", basic("bob", "hunter2 hunter2"))
		return st == 200
	})
	if st, _, _ := r.do(http.MethodGet, "/", basic("alice", "correct horse")); st != 401 {
		t.Errorf("the old password still works after the file changed: %d", st)
	}
	// A broken file refuses everyone rather than letting everyone in.
	if err := os.WriteFile(file, []byte("alice:{SHA}notbcrypt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.waitFor(10*time.Second, "the broken file to refuse", func() bool {
		st, _, _ := r.do(http.MethodGet, "/", basic("bob", "hunter2 hunter2"))
		return st == 401
	})
	if !strings.Contains(r.logs.String(), "the password file became unusable") {
		t.Error("the log does not say the password file is broken")
	}
	if strings.Contains(r.logs.String(), "notbcrypt") || strings.Contains(r.logs.String(), "hunter2") {
		t.Error("the log shows a hash or a password")
	}
}

// ui.base_path serves the pages under a prefix, every link carries it, and
// the probes stay at the root.
func TestBasePath(t *testing.T) {
	r := newRig(t, rigOptions{UI: "  base_path: /nsguard/\n"})
	r.start()
	status, _, body := r.get("/nsguard/")
	if status != 200 {
		t.Fatalf("/nsguard/: %d", status)
	}
	for _, want := range []string{`href="/nsguard/domains/shop-example.com"`, `href="/nsguard/incidents"`, `href="/nsguard/static/style.`, `action="/nsguard/"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the overview lacks %s", want)
		}
	}
	for path, want := range map[string]int{
		"/nsguard/domains/shop-example.com": 200, "/nsguard/failover": 200, "/": 404, "/domains/shop-example.com": 404,
		"/nsguardx": 404, "/healthz": 200, "/metrics": 200,
	} {
		if st, _, _ := r.get(path); st != want {
			t.Errorf("%s: %d, want %d", path, st, want)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + r.addr + "/nsguard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/nsguard/" {
		t.Errorf("/nsguard: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// ui.enabled: false leaves only the probes and /metrics.
func TestPagesOff(t *testing.T) {
	r := newRig(t, rigOptions{UI: "  enabled: false\n"})
	r.start()
	if st, _, _ := r.get("/"); st != 404 {
		t.Errorf("/ with the pages off: %d", st)
	}
	if st, _, _ := r.get("/metrics"); st != 200 {
		t.Errorf("/metrics: %d", st)
	}
}
