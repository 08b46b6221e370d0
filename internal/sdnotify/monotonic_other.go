//go:build !linux

package sdnotify

// monotonicUsec is 0 off Linux: there is no systemd to read it, and the
// package only has to compile there.
func monotonicUsec() int64 { return 0 }
