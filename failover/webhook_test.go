package failover

import (
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
)

// webhookStep plans the webhook step of a minimal config (no lab: the
// step needs none) and returns a function that runs it.
func webhookStep(t *testing.T, step string) (func() (string, string, error), error) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte(webhookSecret), 0o600)
	cfg, err := config.Parse(filepath.Join(dir, "nsguard.yaml"), []byte(fmt.Sprintf(`store: {path: %q}
resolver: {ipv6: false}
domains: [{name: shop-example.com, tier: 0}]
playbooks:
  - name: p
    primary: shop-example.com
    backup: shop-backup.net
    steps:
      - webhook: %s
`, filepath.Join(dir, "nsguard.db"), step)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	e.backoff = 10 * time.Millisecond
	pb := cfg.Playbooks[0]
	pl := &planner{e: e, pb: pb}
	sp := &StepPlan{Index: 1, Kind: "webhook", Name: "webhook", step: pb.Steps[0]}
	if err := pl.planWebhook(sp, pb.Steps[0].Webhook); err != nil {
		return nil, err
	}
	rc := &runCtx{plan: &Plan{Playbook: "p", Steps: []StepPlan{*sp}}, runID: 7, now: time.Now,
		data: templateData{Playbook: "p", Primary: pb.Primary, Backup: pb.Backup, RunID: "7", By: "alice", Mode: ModeFailover}}
	return func() (string, string, error) { return e.execWebhook(context.Background(), rc, sp) }, nil
}

type attempt struct {
	idem, sig string
	valid     bool
}

func TestWebhookRetries(t *testing.T) {
	cases := []struct {
		name     string
		codes    []int // answers in turn; the last repeats
		retries  int
		ok       bool
		attempts int
		errText  string
	}{
		{"2xx at once", []int{202}, 2, true, 1, ""},
		{"5xx then success", []int{503, 502, 200}, 2, true, 3, ""},
		{"429 is retried", []int{429, 200}, 1, true, 2, ""},
		{"4xx is not retried", []int{400}, 3, false, 1, "answered 400, which is not worth retrying"},
		{"gives up after the retries", []int{500}, 1, false, 2, "failed after 2 attempt(s): HTTP 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []attempt
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				sig := r.Header.Get("X-Sig")
				mu.Lock()
				got = append(got, attempt{r.Header.Get("Idempotency-Key"), sig, hmac.Equal([]byte(sig), []byte(Sign(webhookSecret, b)))})
				n := len(got)
				mu.Unlock()
				code := tc.codes[min(n, len(tc.codes))-1]
				if code == 429 {
					w.Header().Set("Retry-After", "0")
				}
				w.WriteHeader(code)
				fmt.Fprintf(w, "answer %d", n)
			}))
			defer srv.Close()
			run, err := webhookStep(t, fmt.Sprintf(`{url: "%s/x", body: '{"b":"{{.Backup}}","by":"{{.By}}"}', secret_file: secret, signature_header: X-Sig, retries: %d}`, srv.URL, tc.retries))
			if err != nil {
				t.Fatal(err)
			}
			req, resp, err := run()
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("error %q, want %q", err, tc.errText)
			}
			if len(got) != tc.attempts {
				t.Fatalf("%d attempts, want %d", len(got), tc.attempts)
			}
			for _, a := range got {
				if !a.valid || a.idem != "nsguard-p-7-1" {
					t.Errorf("attempt %+v", a)
				}
			}
			if tc.ok && !strings.Contains(resp, fmt.Sprintf("after %d attempt(s): answer %d", tc.attempts, tc.attempts)) {
				t.Errorf("response %q", resp)
			}
			if !strings.Contains(req, `body {"b":"shop-backup.net","by":"alice"}`) || !strings.Contains(req, "signed (X-Sig)") {
				t.Errorf("request %q", req)
			}
		})
	}
}

func TestWebhookBoundsAndTimeouts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			chunk := strings.Repeat("x", 64<<10)
			for i := 0; i < 160; i++ { // 10 MB
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer srv.Close()

	run, err := webhookStep(t, fmt.Sprintf(`{url: "%s/huge"}`, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := run()
	if err != nil || len(resp) > 400 {
		t.Errorf("huge answer: %v, %d bytes kept", err, len(resp))
	}

	run, err = webhookStep(t, fmt.Sprintf(`{url: "%s/slow?token=cred-in-url", timeout: 200ms, retries: 1}`, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = run()
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("slow receiver: %v after %s", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "cred-in-url") {
		t.Errorf("the error quotes the URL's credential: %v", err)
	}

	run, err = webhookStep(t, `{url: "http://127.0.0.1:1/x?token=cred-in-url"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(); err == nil || strings.Contains(err.Error(), "cred-in-url") {
		t.Errorf("unreachable receiver: %v", err)
	}
}

func TestWebhookPlanErrors(t *testing.T) {
	for _, tc := range []struct{ step, want string }{
		{`{url: "http://127.0.0.1:1/", body: "{{.Nope}}"}`, "body template"},
		{`{url: "http://127.0.0.1:1/", body: "{{.Primary"}`, "body template"},
		{`{url: "http://127.0.0.1:1/", secret_env: NSGUARD_TEST_NO_SUCH_VAR}`, "NSGUARD_TEST_NO_SUCH_VAR is empty or unset"},
		{`{url: "http://127.0.0.1:1/", secret_file: /nonexistent/secret}`, "/nonexistent/secret"},
		{`{url: "http://127.0.0.1:1/", headers: {X-A: "{{.RunID"}}`, "header X-A template"},
	} {
		_, err := webhookStep(t, tc.step)
		if ExitCode(err) != 3 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a usage error with %q", tc.step, err, tc.want)
		}
	}
}

func TestSign(t *testing.T) {
	// The value a receiver computes with: printf %s BODY | openssl dgst -sha256 -hmac SECRET
	if got := Sign("key", []byte("The quick brown fox jumps over the lazy dog")); got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("Sign = %s", got)
	}
}
