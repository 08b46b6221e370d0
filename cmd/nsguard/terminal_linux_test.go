package main

import (
	"os"
	"testing"
)

// TestDevNullIsNoTerminal: /dev/null is a character device but not a
// terminal; output sent there must be written as it comes, with no
// progress bar and no colour. A pseudo-terminal is one.
func TestDevNullIsNoTerminal(t *testing.T) {
	if _, pts := openPTY(t); !isTerminal(pts) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, c := range []struct {
		name string
		f    *os.File
	}{{"/dev/null", null}, {"a pipe", w}, {"a regular file", mustTemp(t)}} {
		if isTerminal(c.f) {
			t.Errorf("%s is taken for a terminal", c.name)
		}
	}
}

func mustTemp(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
