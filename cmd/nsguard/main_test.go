package main

import (
	"os"
	"testing"

	"github.com/nsguard/nsguard/internal/store/pgtest"
)

// TestMain lets a test start this binary as the real nsguard: with
// NSGUARD_TEST_MAIN=1 it runs main() on its arguments, signals and exit
// code included (signals_test.go). Otherwise it runs the tests, and stops
// the PostgreSQL server the store tests start (pgtest) after them.
func TestMain(m *testing.M) {
	if os.Getenv("NSGUARD_TEST_MAIN") == "1" {
		main()
		return
	}
	pgtest.Main(m)
}
