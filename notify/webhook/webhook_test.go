package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/notify"
)

const secretPath = "/services/T000/B000/SECRETwebhookPATH"

func msg() *notify.Message {
	return &notify.Message{Kind: notify.KindRepeat, Domain: "shop-example.com", Severity: finding.Critical, Title: "Still open", IncidentID: 7,
		At: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), ThreadKey: "incident:7"}
}

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		retryAfter string
		wantRetry  bool
		wantReason string
		wantWait   time.Duration
	}{
		{"ok", 200, "ok", "", false, "", 0},
		{"server error", 503, "service unavailable", "", true, "http 503", 0},
		{"rate limited", 429, "rate_limited", "7", true, "rate limited", 7 * time.Second},
		{"rate limited without header", 429, "", "", true, "rate limited", time.Second},
		{"no service", 404, "no_service", "", false, "no_service", 0},
		{"archived", 410, "channel_is_archived", "", false, "channel_is_archived", 0},
		{"bad payload", 400, "invalid_payload", "", false, "invalid_payload", 0},
		{"html error page", 403, "<html>forbidden</html>", "", false, "http 403", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != secretPath || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request to %s (%s)", r.URL.Path, r.Header.Get("Content-Type"))
				}
				_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&got)
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			r, err := New(Options{URL: srv.URL + secretPath})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := r.Notify(context.Background(), msg())
			if retry != tc.wantRetry {
				t.Fatalf("retry = %v, want %v (err %v)", retry, tc.wantRetry, err)
			}
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if text, _ := got["text"].(string); !strings.Contains(text, "shop-example.com") || !strings.Contains(text, "incident #7") {
					t.Fatalf("posted text = %q", text)
				}
				if blocks, _ := got["blocks"].([]any); len(blocks) < 2 {
					t.Fatalf("posted blocks = %v", got["blocks"])
				}
				return
			}
			var ne *notify.Error
			if !errors.As(err, &ne) || ne.Reason != tc.wantReason || ne.RetryAfter != tc.wantWait {
				t.Fatalf("err = %#v, want reason %q wait %s", err, tc.wantReason, tc.wantWait)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error shows the URL: %v", err)
			}
		})
	}
}

func TestNetworkErrorHidesURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + secretPath
	l.Close()
	r, err := New(Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := r.Notify(context.Background(), msg())
	if !retry || err == nil {
		t.Fatalf("retry = %v, err = %v; want a retryable error", retry, err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "/services/") {
		t.Fatalf("error shows the URL: %v", err)
	}
	if !strings.Contains(err.Error(), "network") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRejectsBadURLWithoutEchoingIt(t *testing.T) {
	for _, u := range []string{"", "ftp://x/SECRET", "hooks.slack.com/SECRET", "http://"} {
		_, err := New(Options{URL: u})
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("New(%q) err = %v", u, err)
		}
	}
}
