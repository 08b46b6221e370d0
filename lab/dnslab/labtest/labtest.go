//go:build linux

// Package labtest starts nsguard's DNS lab for tests, served by real BIND 9.
// A missing named fails the test with the install command: BIND tests run
// in CI and are never skipped.
package labtest

import (
	"context"
	"testing"

	"github.com/nsguard/nsguard/lab/dnslab"
)

// Backend returns a BIND 9 backend for a lab the test starts itself (with
// dnslab.Options.Backend); it is closed when the test ends.
func Backend(t testing.TB) *dnslab.BIND {
	t.Helper()
	b, err := dnslab.NewBIND(dnslab.BINDOptions{})
	if err != nil {
		t.Fatalf("BIND backend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// BIND starts the default lab world on 127.base.0.0/16 with BIND 9 serving
// every zone, and closes it when the test ends. Every package that starts
// a BIND lab passes its own base: go test runs packages in parallel.
func BIND(t testing.TB, base byte) *dnslab.Lab {
	t.Helper()
	l, err := dnslab.Start(context.Background(), dnslab.Options{Base: base, Backend: Backend(t)})
	if err != nil {
		t.Fatalf("starting the BIND lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the BIND lab: %v", err)
		}
	})
	return l
}
