//go:build !linux

package main

import "os"

// fileIsTerminal: a character device stands for a terminal here (nsguard
// runs on Linux; elsewhere /dev/null counts as one too).
func fileIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
