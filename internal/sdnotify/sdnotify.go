// Package sdnotify is a minimal sd_notify(3) client: it tells systemd that
// the daemon is ready, reloading or stopping, sets a one-line status and
// pings the watchdog, by writing datagrams to $NOTIFY_SOCKET. When the
// variable is unset (not under systemd, Type= other than notify, a
// container, a test) every call is a no-op that returns nil, so the daemon
// calls it unconditionally.
//
// It is written here rather than imported because the protocol is a few
// lines and the common library (coreos/go-systemd) would pull in D-Bus
// code nsguard never uses.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvSocket is the variable systemd sets to the notification socket.
const EnvSocket = "NOTIFY_SOCKET"

// maxStatus bounds a STATUS= line: systemctl shows one line, and a huge
// error message must not turn into a huge datagram.
const maxStatus = 1024

// ErrUnsupportedSocket is returned for a $NOTIFY_SOCKET that is neither an
// absolute path nor an abstract socket name ("@name"), e.g. systemd's
// vsock: form, which nsguard does not speak.
var ErrUnsupportedSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// Ready tells systemd that start-up (or a reload) is complete: with
// Type=notify, "systemctl start" returns only after this.
func Ready() error { return Notify("READY=1") }

// Reloading tells systemd that a reload (SIGHUP) has begun; send Ready when
// it is done. MONOTONIC_USEC lets systemd ≥ 253 (Type=notify-reload) match
// the reload to the request; older versions ignore it.
func Reloading() error {
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd that shutdown has begun.
func Stopping() error { return Notify("STOPPING=1") }

// Status sets the one-line status "systemctl status" shows. Newlines are
// replaced by spaces so that text from an error message can never inject
// another assignment (a stray "READY=1"), and it is cut to 1 KiB.
func Status(s string) error { return Notify("STATUS=" + sanitizeStatus(s)) }

// Watchdog pings the service watchdog (WatchdogSec=); call it at half the
// interval WatchdogInterval returns.
func Watchdog() error { return Notify("WATCHDOG=1") }

// Notify sends one raw notification (newline-separated VAR=value
// assignments) to $NOTIFY_SOCKET; it is a no-op when the variable is unset.
func Notify(state string) error {
	return Send(os.Getenv(EnvSocket), state)
}

// Send writes state to the notification socket at addr: an absolute path,
// or an abstract socket name starting with '@'. An empty addr is a no-op.
func Send(addr, state string) error {
	if addr == "" {
		return nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("%w %q: want an absolute path or @abstract name", ErrUnsupportedSocket, addr)
	}
	// Go maps a leading '@' to the abstract namespace (a leading NUL byte)
	// on Linux, which is what systemd means by it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: connect to %s: %w", addr, err)
	}
	defer conn.Close()
	// The socket belongs to PID 1 and is never full for long, but a bound
	// write keeps a wedged systemd from hanging shutdown.
	if err := conn.SetWriteDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", addr, err)
	}
	return nil
}

// WatchdogInterval returns the watchdog interval systemd expects pings
// within (WatchdogSec=), and false when no watchdog is set for this
// process (WATCHDOG_USEC unset, or WATCHDOG_PID names another process).
func WatchdogInterval() (time.Duration, bool, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("sdnotify: invalid WATCHDOG_USEC %q", us)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, false, fmt.Errorf("sdnotify: invalid WATCHDOG_PID %q", p)
		}
		if pid != os.Getpid() {
			return 0, false, nil
		}
	}
	return time.Duration(n) * time.Microsecond, true, nil
}

func sanitizeStatus(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxStatus {
		// Cut on a rune boundary so systemd gets valid UTF-8.
		cut := maxStatus
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
