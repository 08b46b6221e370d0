package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// listen opens a real unixgram socket, the kind systemd listens on, and
// returns its address and a function reading one datagram.
func listen(t *testing.T, addr string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 8192)
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read notification: %v", err)
		}
		return string(buf[:n])
	}
}

// socketPath is short on purpose: sun_path holds 108 bytes and t.TempDir
// paths carry the test name.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "notify.sock")
}

func TestMessages(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes, two bytes a rune
	tests := []struct {
		name string
		send func() error
		want string         // exact datagram, or
		re   *regexp.Regexp // a pattern when it carries a clock reading
	}{
		{name: "ready", send: Ready, want: "READY=1"},
		{name: "stopping", send: Stopping, want: "STOPPING=1"},
		{name: "watchdog", send: Watchdog, want: "WATCHDOG=1"},
		{name: "reloading", send: Reloading, re: regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`)},
		{name: "status", send: func() error { return Status("checking 12 domains") }, want: "STATUS=checking 12 domains"},
		{name: "status cannot inject an assignment",
			send: func() error { return Status("store: bad\nREADY=1\r\nX") },
			want: "STATUS=store: bad READY=1  X"},
		{name: "status is cut on a rune boundary",
			send: func() error { return Status(long) },
			want: "STATUS=" + strings.Repeat("é", maxStatus/2)},
		{name: "raw notify", send: func() error { return Notify("READY=1\nSTATUS=up") }, want: "READY=1\nSTATUS=up"},
	}
	for _, kind := range []string{"path", "abstract"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				addr := socketPath(t)
				if kind == "abstract" {
					addr = fmt.Sprintf("@nsguard-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
				}
				read := listen(t, addr)
				t.Setenv(EnvSocket, addr)
				before := monotonicUsec()
				if err := tt.send(); err != nil {
					t.Fatalf("send: %v", err)
				}
				after := monotonicUsec()
				got := read()
				if tt.re == nil {
					if got != tt.want {
						t.Fatalf("datagram = %q, want %q", got, tt.want)
					}
					if !utf8.ValidString(got) {
						t.Fatalf("datagram is not valid UTF-8: %q", got)
					}
					return
				}
				m := tt.re.FindStringSubmatch(got)
				if m == nil {
					t.Fatalf("datagram = %q, want match for %s", got, tt.re)
				}
				us, _ := strconv.ParseInt(m[1], 10, 64)
				if us < before || us > after {
					t.Fatalf("MONOTONIC_USEC=%d outside the send window [%d, %d]", us, before, after)
				}
			})
		}
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	t.Setenv(EnvSocket, "")
	for name, f := range map[string]func() error{"ready": Ready, "reloading": Reloading, "stopping": Stopping,
		"watchdog": Watchdog, "status": func() error { return Status("x") }} {
		if err := f(); err != nil {
			t.Errorf("%s with NOTIFY_SOCKET unset: %v, want nil", name, err)
		}
	}
}

func TestSendErrors(t *testing.T) {
	dir := socketPath(t)
	tests := []struct {
		name, addr string
		is         error
		contains   string
	}{
		{name: "relative path", addr: "run/notify", is: ErrUnsupportedSocket},
		{name: "vsock form", addr: "vsock:2:1234", is: ErrUnsupportedSocket},
		{name: "nobody listening", addr: dir, contains: "connect to " + dir},
		{name: "abstract nobody listening", addr: "@nsguard-sdnotify-absent", contains: "connect to @nsguard-sdnotify-absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvSocket, tt.addr)
			err := Ready()
			if err == nil {
				t.Fatal("Ready() = nil, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.contains)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name, usec, pid string
		want            time.Duration
		ok, err         bool
	}{
		{name: "unset"},
		{name: "set, no pid", usec: "30000000", want: 30 * time.Second, ok: true},
		{name: "set for us", usec: "500000", pid: self, want: 500 * time.Millisecond, ok: true},
		{name: "set for another process", usec: "500000", pid: "1"},
		{name: "garbage usec", usec: "30s", err: true},
		{name: "zero usec", usec: "0", err: true},
		{name: "garbage pid", usec: "1000", pid: "me", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			got, ok, err := WatchdogInterval()
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if got != tt.want || ok != tt.ok {
				t.Fatalf("WatchdogInterval() = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
