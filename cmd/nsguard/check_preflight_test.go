package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/labenv"
)

// startEnvWith is startEnv with DNS lab options (a BIND backend, a base).
func startEnvWith(t *testing.T, dnsOpts dnslab.Options, extra string) (*labenv.Env, string) {
	t.Helper()
	env, err := labenv.Start(context.Background(), labenv.Options{Dir: t.TempDir(), DNS: dnsOpts})
	if err != nil {
		t.Fatalf("starting labs: %v", err)
	}
	t.Cleanup(func() { env.Close() })
	path, err := env.WriteConfig(extra)
	if err != nil {
		t.Fatal(err)
	}
	return env, path
}

// setResolverKey adds one key to the config file's resolver section.
func setResolverKey(t *testing.T, path, line string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "resolver:\n", "resolver:\n  "+line+"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testCheckPreflight runs `check --ns/--ds` on a zone the lab serves but
// its parent does not delegate: the pre-flight judges the zone, the plain
// check sees the missing delegation.
func testCheckPreflight(t *testing.T, env *labenv.Env, cfg string) {
	ctx := context.Background()
	if err := env.DNS.ServeUndelegated(ctx, "new-shop.com", "ns1.provider-b.org", "ns2.provider-a.net"); err != nil {
		t.Fatal(err)
	}
	pay := env.DNS.World().Zone("pay-example.org").DS()
	payDS := fmt.Sprintf("%d %d %d %s", pay.KeyTag, pay.Algorithm, pay.DigestType, strings.ToLower(pay.Digest))
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		want     []string // in the table output
		findings []string
	}{
		{"the new provider's servers serve the zone", []string{"new-shop.com", "--ns", "ns1.provider-b.org", "--ns", "ns2.provider-a.net"}, 0,
			[]string{"Pre-flight: new-shop.com as if its parent delegated it to ns1.provider-b.org, ns2.provider-a.net with no DS", "1 domains: 0 critical, 0 warning, 1 ok"}, nil},
		{"a proposed server does not serve it", []string{"new-shop.com", "--ns", "ns1.provider-b.org", "--ns", "ns1.attacker.net"}, 1,
			[]string{"NS_LAME"}, []string{"NS_LAME", "PARENT_CHILD_NS_MISMATCH"}},
		{"a name inside the zone with its glue", []string{"new-shop.com", "--ns", "ns9.new-shop.com/" + env.DNS.AddrOf("ns1.provider-b.org").String(), "--ns", "ns2.provider-a.net"}, 1,
			[]string{"ns9.new-shop.com/" + env.DNS.AddrOf("ns1.provider-b.org").String()}, []string{"GLUE_MISMATCH", "PARENT_CHILD_NS_MISMATCH"}},
		{"the signed zone with its DS", []string{"pay-example.org", "--ns", "ns1.provider-b.org", "--ns", "ns2.provider-a.net", "--ds", payDS}, 0,
			[]string{"with DS " + strings.ToUpper(payDS)}, nil},
		{"the signed zone with a DS of no key", []string{"pay-example.org", "--ns", "ns1.provider-b.org", "--ns", "ns2.provider-a.net", "--ds", "1 13 2 " + strings.Repeat("AB", 32)}, 2,
			[]string{"DS_NO_MATCHING_DNSKEY"}, []string{"DS_NO_MATCHING_DNSKEY"}},
		{"without a pre-flight the zone is not delegated", []string{"new-shop.com", "--only", "dns"}, 2,
			[]string{"DELEGATION_MISSING"}, []string{"DELEGATION_MISSING"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, append([]string{"check", "--config", cfg}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, out, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			code, js, _ := runCLI(t, append([]string{"check", "--config", cfg, "-o", "json"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("-o json: exit %d, want %d", code, tc.code)
			}
			rep := decodeCheck(t, js)
			var got []string
			for _, f := range rep.Domains[0].Findings {
				got = append(got, f.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.findings, ",") {
				t.Errorf("findings %v, want %v", got, tc.findings)
			}
		})
	}
}

func TestCheckPreflight(t *testing.T) {
	env, cfg := startEnv(t, "")
	testCheckPreflight(t, env, cfg)
}

func TestCheckPreflightUsage(t *testing.T) {
	_, cfg := startEnv(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"shop-example.com", "--ds", "1 13 2 AB"}, "--ds needs --ns"},
		{[]string{"shop-example.com", "shop-backup.net", "--ns", "ns1.provider-a.net"}, "exactly one DOMAIN"},
		{[]string{"--ns", "ns1.provider-a.net"}, "exactly one DOMAIN"},
		{[]string{"shop-example.com", "--ns", "ns1.provider-a.net/not-an-ip"}, `"not-an-ip" is not an IP address`},
		{[]string{"shop-example.com", "--ns", "/192.0.2.1"}, "is not a host name"},
		{[]string{"shop-example.com", "--ns", "ns1.provider-a.net", "--ds", "1 13 2 XYZ"}, "digest is not hexadecimal"},
		{[]string{"shop-example.com", "--ns", "ns1.provider-a.net", "--only", "registration"}, "cannot go with --only registration"},
	} {
		code, out, stderr := runCLI(t, append([]string{"check", "--config", cfg}, tc.args...)...)
		if code != 3 || !strings.Contains(stderr, tc.want) {
			t.Errorf("check %v: exit %d, stderr %q; want exit 3 saying %q\n%s", tc.args, code, stderr, tc.want, out)
		}
	}
}

// TestCheckInterceptedDNS: behind a middlebox that answers every UDP query
// NXDOMAIN without authority, check cannot check (exit 3) and says why; it
// never reports the delegation missing.
func TestCheckInterceptedDNS(t *testing.T) {
	env, cfg := startEnv(t, "")
	if err := env.DNS.Intercept(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "check", "--config", cfg, "shop-example.com", "--only", "dns")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "answers are not authoritative: is DNS intercepted?") || strings.Contains(out, "DELEGATION_MISSING") {
		t.Errorf("want the interception named and no DELEGATION_MISSING:\n%s", out)
	}
}

// TestCheckShowsProgressWhileStuck runs check on a real terminal (a pty)
// against a lab where no server answers: while the one domain hangs, the
// progress line keeps coming with the elapsed time, and the domain gives up
// at resolver.domain_timeout.
func TestCheckShowsProgressWhileStuck(t *testing.T) {
	env, cfg := startEnv(t, "")
	setResolverKey(t, cfg, "domain_timeout: 2s")
	if err := env.DNS.SetFaultAll(context.Background(), dnslab.FaultTimeout); err != nil {
		t.Fatal(err)
	}
	master, slave := openPTY(t)
	var screen bytes.Buffer
	drained := make(chan struct{})
	go func() {
		// Until the slave is closed and everything written is read (EIO).
		defer close(drained)
		io.Copy(&screen, master)
	}()
	var out bytes.Buffer
	start := time.Now()
	code := run(context.Background(), []string{"check", "--config", cfg, "shop-example.com", "--only", "dns"}, strings.NewReader(""), &out, slave)
	took := time.Since(start)
	slave.Close()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output was never fully read")
	}
	seen := screen.String()
	if code != 3 {
		t.Errorf("exit %d, want 3 (not checked)\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "took longer than 2s and was abandoned") {
		t.Errorf("want the deadline named:\n%s", out.String())
	}
	if took > 10*time.Second {
		t.Errorf("check took %s with resolver.domain_timeout 2s", took.Round(time.Millisecond))
	}
	for _, want := range []string{"checking [", "0/1  1s"} {
		if !strings.Contains(seen, want) {
			t.Errorf("the terminal never showed %q while the domain hung:\n%q", want, seen)
		}
	}
	if !strings.HasSuffix(seen, "\r\x1b[K") {
		t.Errorf("the progress line is not cleared at the end: %q", seen)
	}
}

// openPTY opens a pseudo-terminal pair: what check writes to slave is a
// terminal write, read back from master.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty's slave: %v", err)
	}
	t.Cleanup(func() {
		s.Close() // a second Close is harmless
		m.Close()
	})
	return m, s
}

// TestProgressOffTheTerminal: piped, nothing is drawn, however long the
// run; on a terminal a short, fast run draws nothing either.
func TestProgressOffTheTerminal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		on    bool
		delay time.Duration
	}{{"piped", false, 0}, {"short and fast", true, time.Hour}} {
		var buf syncBuffer
		p := startProgress(&buf, "checking", tc.on, tc.delay, time.Millisecond)
		p.expect(3)
		time.Sleep(20 * time.Millisecond)
		p.update(1, 3)
		p.done()
		if buf.String() != "" {
			t.Errorf("%s: drew %q", tc.name, buf.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
