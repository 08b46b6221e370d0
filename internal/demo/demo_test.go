package demo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf lets the test read what the demo printed while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The demo tells the story end to end, prints the status pages' address,
// and keeps serving them for --hold after the story; the pages then show
// the resolved incident and the verified failover run.
func TestDemoPrintsThePagesAndHolds(t *testing.T) {
	out := &syncBuf{}
	done := make(chan error, 1)
	start := time.Now()
	const hold = 4 * time.Second
	go func() { done <- Run(context.Background(), Options{Out: out, Hold: hold}) }()
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" || !strings.Contains(out.String(), "stay up for") {
		if time.Now().After(deadline) {
			t.Fatalf("no pages URL and hold message:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("the demo ended before holding: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if m := regexp.MustCompile(`status pages: (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	for path, want := range map[string]string{"": "shop-example.com", "incidents/1": "Resolved", "failover": "verified"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s during the hold: %v", url+path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s during the hold: %d, want %q in the page", url+path, resp.StatusCode, want)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not end after its hold")
	}
	if took := time.Since(start); took < hold {
		t.Errorf("the demo ended after %s, before its hold of %s", took, hold)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("the pages are still served after the demo ended")
	}
}
