package checker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/lab/labenv"
	"github.com/nsguard/nsguard/lab/reglab"
)

// TestRegistrationStreamed: a registration-only run with OnResult hands
// over every domain once, with what a run that keeps the results returns
// (findings, record, errors), and returns nil. One domain has findings of
// its own (an unapproved registrar, close to expiry).
func TestRegistrationStreamed(t *testing.T) {
	ctx := context.Background()
	env, err := labenv.Start(ctx, labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.Reg.Update("shop-example.com", func(d *reglab.Domain) {
		d.Registrar, d.IANAID = "Evil Registrar Ltd", "9999"
		d.Expiry = time.Now().AddDate(0, 0, 20)
		d.RegistrarExpiry = time.Time{}
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Config("")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checker.New(cfg, checker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	opts := checker.RunOptions{Classes: []string{checker.Registration}, Fresh: true}
	held := ck.Run(ctx, cfg.Domains, opts)

	var mu sync.Mutex
	streamed := map[int]checker.Result{}
	opts.OnResult = func(r checker.Result) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := streamed[r.Index]; dup {
			t.Errorf("%s handed over twice", r.Domain.Name)
		}
		streamed[r.Index] = r
	}
	if got := ck.Run(ctx, cfg.Domains, opts); got != nil {
		t.Errorf("a streamed run returned %d results", len(got))
	}
	if len(streamed) != len(held) {
		t.Fatalf("%d domains handed over, want %d", len(streamed), len(held))
	}
	withFindings := 0
	for i, h := range held {
		s := streamed[i]
		if s.Domain.Name != h.Domain.Name {
			t.Errorf("domain %d: %s handed over, want %s", i, s.Domain.Name, h.Domain.Name)
			continue
		}
		if len(h.Findings) > 0 {
			withFindings++
		}
		for _, c := range []struct {
			what      string
			got, want any
		}{{"findings", s.Findings, h.Findings}, {"record", s.Registration, h.Registration}, {"lookup error", s.RegLookupErr, h.RegLookupErr}} {
			g, _ := json.Marshal(c.got)
			w, _ := json.Marshal(c.want)
			if string(g) != string(w) {
				t.Errorf("%s: streamed %s\n%s\nheld\n%s", h.Domain.Name, c.what, g, w)
			}
		}
	}
	if withFindings == 0 {
		t.Error("no domain has a finding: the comparison proves little")
	}
}
