//go:build linux

package main

import (
	"testing"

	"github.com/nsguard/nsguard/internal/dnslab/labtest"
)

// failoverBindBase is cmd/nsguard's BIND lab, 127.65.0.0/16.
const failoverBindBase byte = 65

// TestFailoverCLIDoneBIND is the "done when" against real BIND 9.
func TestFailoverCLIDoneBIND(t *testing.T) {
	testFailoverCLIDone(t, startFailoverLab(t, labtest.Backend(t), failoverBindBase))
}
