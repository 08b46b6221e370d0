//go:build linux

package failover

import (
	"testing"

	"github.com/nsguard/nsguard/lab/dnslab/labtest"
)

// bindBase is this package's BIND lab, 127.64.0.0/16 (see the dnslab
// README for the others).
const bindBase byte = 64

// TestBIND runs every scenario against real BIND 9: the switch zone's
// primary takes the TSIG-signed updates (allow-update), its secondary
// follows by NOTIFY and IXFR, and verify polls both.
func TestBIND(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			s.run(t, newHarness(t, labtest.Backend(t), bindBase))
		})
	}
}
