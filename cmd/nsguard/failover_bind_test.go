//go:build linux

package main

import (
	"testing"

	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/dnslab/labtest"
)

// failoverBindBase is cmd/nsguard's BIND lab, 127.65.0.0/16.
const failoverBindBase byte = 65

// TestFailoverCLIDoneBIND is the "done when" against real BIND 9.
func TestFailoverCLIDoneBIND(t *testing.T) {
	testFailoverCLIDone(t, startFailoverLab(t, labtest.Backend(t), failoverBindBase))
}

// TestCheckPreflightBIND is `check --ns/--ds` against real BIND 9.
func TestCheckPreflightBIND(t *testing.T) {
	env, cfg := startEnvWith(t, dnslab.Options{Base: failoverBindBase, Backend: labtest.Backend(t)}, "")
	testCheckPreflight(t, env, cfg)
}
