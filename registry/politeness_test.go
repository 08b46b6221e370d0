package registry

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBackoff(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)}
	p := newPoliteness(1000, clk.now)
	ctx := context.Background()
	const srv = "whois.example.net:43"

	if err := p.wait(ctx, srv); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	// No Retry-After: 1 minute, then doubling.
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		until := p.limited(srv, 0)
		if got := until.Sub(clk.t); got != want {
			t.Errorf("strike %d: backoff %s, want %s", i+1, got, want)
		}
	}
	if err := p.wait(ctx, srv); !errors.Is(err, ErrBackingOff) {
		t.Fatalf("inside backoff: err = %v, want ErrBackingOff", err)
	}
	if err := p.wait(ctx, "other.example:43"); err != nil {
		t.Fatalf("backoff leaked to another server: %v", err)
	}
	clk.t = clk.t.Add(4*time.Minute + time.Second)
	if err := p.wait(ctx, srv); err != nil {
		t.Fatalf("after backoff: %v", err)
	}
	// A good answer resets the strikes; Retry-After is honoured but capped.
	p.ok(srv)
	if got := p.limited(srv, 0).Sub(clk.t); got != time.Minute {
		t.Errorf("after ok: backoff %s, want 1m", got)
	}
	if got := p.limited(srv, 30*time.Second).Sub(clk.t); got != 30*time.Second {
		t.Errorf("Retry-After 30s: backoff %s", got)
	}
	if got := p.limited(srv, 7*24*time.Hour).Sub(clk.t); got != maxBackoff {
		t.Errorf("Retry-After a week: backoff %s, want %s", got, maxBackoff)
	}
}

// The token bucket holds one token: a second question inside the same
// second must wait, and a context that cannot wait that long fails at once.
func TestTokenBucket(t *testing.T) {
	p := newPoliteness(1, time.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.wait(ctx, "rdap.example"); err != nil {
		t.Fatalf("first question: %v", err)
	}
	if err := p.wait(ctx, "rdap.example"); err == nil {
		t.Fatal("second question inside a second was allowed at 1 qps")
	}
	if err := p.wait(ctx, "rdap.other.example"); err != nil {
		t.Fatalf("buckets are per server: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		"Tue, 06 Jan 2026 12:05:00 GMT": 5 * time.Minute,
		"Tue, 06 Jan 2026 11:00:00 GMT": 0,
		"soon":                          0,
	} {
		h := http.Header{}
		if in != "" {
			h.Set("Retry-After", in)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
