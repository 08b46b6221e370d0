package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/lab/labenv"
)

// A probe writes for a leader elsewhere: on a SQLite store (one node, no
// cluster) it refuses to start, saying why.
func TestProbeNeedsPostgres(t *testing.T) {
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	cfg, err := env.WriteConfig("ui: {enabled: false}\n")
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "probe", "--config", cfg)
	if code != exitUsage || !strings.Contains(stderr, "nsguard probe needs a PostgreSQL store") {
		t.Fatalf("probe on SQLite: exit %d\n%s", code, stderr)
	}
}
