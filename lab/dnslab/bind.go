//go:build linux

package dnslab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// ReloadMode is how the BIND backend makes named serve a changed world.
type ReloadMode int

const (
	// ReloadRNDC sends `rndc reconfig` over a control channel keyed from the
	// lab's own directory. Changed zones get new file names, so reconfig
	// loads exactly them and keeps the others: the fast default.
	ReloadRNDC ReloadMode = iota
	// ReloadRestart stops named and starts it again on every change.
	ReloadRestart
)

func (m ReloadMode) String() string {
	if m == ReloadRestart {
		return "restart"
	}
	return "rndc"
}

// BINDOptions configure the BIND 9 backend.
type BINDOptions struct {
	// Named is the named binary (default: named in $PATH, then /usr/sbin/named).
	Named string
	// RNDC is the rndc binary (default: rndc in $PATH, then /usr/sbin/rndc).
	RNDC string
	// IP is the ip(8) binary used to add lab addresses to Interface
	// (default: ip in $PATH, then /usr/sbin/ip).
	IP string
	// Interface receives the lab's /32 addresses (default "lo").
	Interface string
	// Dir holds named.conf, the zone files and the rndc key; empty means a
	// new temp dir, removed on Close.
	Dir string
	// Reload picks rndc reconfig (default) or a restart per change.
	Reload ReloadMode
	// Wait bounds how long one Sync waits for named to serve the new world
	// (default 10s; big worlds get a second per 500 zones on top).
	Wait time.Duration
	// LockWait bounds how long to wait for another BIND lab on the same Base
	// (another test binary, another engineer's run) to finish (default 3m).
	LockWait time.Duration
	// Logger receives named's output at debug level.
	Logger *slog.Logger
}

// BINDStats are the backend's running figures (for benchmarks and reports).
type BINDStats struct {
	Syncs     int           // Sync calls that changed what named serves
	Starts    int           // times named was started
	Views     int           // views in the current config (one per address)
	Zones     int           // (view, zone) pairs in the current config
	Files     int           // distinct zone files in the current config
	LastSync  time.Duration // wall time of the last Sync
	TotalSync time.Duration // wall time of every Sync
}

// BIND serves a lab's world from a real BIND 9 named: one view per lab
// address (match-destinations), each holding the zones that host serves,
// its own copy where the world gives the host an override.
type BIND struct {
	opts BINDOptions
	dir  string
	own  bool
	log  *slog.Logger

	mu      sync.Mutex
	lock    *os.File
	base    byte
	added   map[netip.Addr]bool // addresses this backend added to the interface
	proc    *namedProc
	port    int
	serving map[netip.Addr]bool // addresses named listens on
	loaded  map[string]bool     // "addr zone file" triples confirmed served
	files   map[string]bool     // zone files of the current config
	conf    string              // the last config in force, @GEN@ in place of its generation
	dyn     dynState            // updatable zones (bind_update.go)
	gen     int
	stats   BINDStats
	closed  bool
}

// NewBIND checks that BIND 9 is installed and prepares the backend's
// directory; named starts on the first Sync.
func NewBIND(opts BINDOptions) (*BIND, error) {
	var err error
	if opts.Named, err = findTool(opts.Named, "named"); err != nil {
		return nil, err
	}
	if opts.RNDC, err = findTool(opts.RNDC, "rndc"); err != nil {
		return nil, err
	}
	if opts.IP, err = findTool(opts.IP, "ip"); err != nil {
		return nil, err
	}
	if opts.Interface == "" {
		opts.Interface = "lo"
	}
	if opts.Wait <= 0 {
		opts.Wait = 10 * time.Second
	}
	if opts.LockWait <= 0 {
		opts.LockWait = 3 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &BIND{opts: opts, dir: opts.Dir, log: opts.Logger.With("component", "dnslab-bind"),
		added: map[netip.Addr]bool{}, serving: map[netip.Addr]bool{}, loaded: map[string]bool{}, files: map[string]bool{}}
	if b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "nsguard-bind-"); err != nil {
			return nil, fmt.Errorf("dnslab: bind: temp dir: %w", err)
		}
		b.own = true
	}
	if b.dir, err = filepath.Abs(b.dir); err != nil {
		return nil, fmt.Errorf("dnslab: bind: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("dnslab: bind: rndc key: %w", err)
	}
	// The key only ever lives in the backend's own 0600 file.
	keyText := fmt.Sprintf("key \"nsguard-lab\" {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", base64.StdEncoding.EncodeToString(secret))
	if err := os.WriteFile(b.path("rndc.key"), []byte(keyText), 0o600); err != nil {
		return nil, fmt.Errorf("dnslab: bind: %w", err)
	}
	rndcConf := "include \"" + b.path("rndc.key") + "\";\noptions { default-key \"nsguard-lab\"; };\n"
	if err := os.WriteFile(b.path("rndc.conf"), []byte(rndcConf), 0o600); err != nil {
		return nil, fmt.Errorf("dnslab: bind: %w", err)
	}
	return b, nil
}

// StartBIND starts a lab whose zones BIND 9 serves: NewBIND plus Start with
// the backend set. opts.Base should be unique per caller (see Options.Base).
func StartBIND(ctx context.Context, opts Options, bopts BINDOptions) (*Lab, error) {
	if bopts.Logger == nil {
		bopts.Logger = opts.Logger
	}
	b, err := NewBIND(bopts)
	if err != nil {
		return nil, err
	}
	opts.Backend = b
	l, err := Start(ctx, opts)
	if err != nil {
		b.Close()
		return nil, err
	}
	return l, nil
}

func findTool(given, name string) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("dnslab: bind: %s: %w", name, err)
		}
		return given, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("dnslab: bind: %s not found in $PATH or /usr/sbin: install BIND 9 with apt-get install -y bind9 (it brings rndc and iproute2)", name)
}

func (b *BIND) path(name string) string { return filepath.Join(b.dir, name) }

// Dir is the directory holding named.conf and the zone files.
func (b *BIND) Dir() string { return b.dir }

// Stats returns the backend's figures so far.
func (b *BIND) Stats() BINDStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Stderr returns the last lines named printed (for error reports).
func (b *BIND) Stderr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return ""
	}
	return b.proc.out.tail(40)
}

// controlAddr is where named's rndc channel listens: an address of the
// lab's /16 no lab world uses, so parallel labs on other bases never meet.
func controlAddr(base byte) netip.Addr { return netip.AddrFrom4([4]byte{127, base, 255, 254}) }

// Sync renders w into named.conf and zone files, makes named serve them on
// addrs at port, and returns once every address answers from the new
// config, every changed zone is loaded and every dropped address is free
// for the lab's own listeners.
func (b *BIND) Sync(ctx context.Context, w *World, addrs []netip.Addr, port int) error {
	start := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("dnslab: bind: backend closed")
	}
	if err := b.lockBase(ctx, w.Base); err != nil {
		return err
	}
	ctl := controlAddr(w.Base)
	for _, a := range addrs {
		if !a.Is4() || a.As4()[0] != 127 {
			return fmt.Errorf("dnslab: bind: %s is not a 127.0.0.0/8 address: the lab only adds loopback addresses", a)
		}
		if a == ctl {
			return fmt.Errorf("dnslab: bind: %s is reserved for named's control channel", a)
		}
	}
	if err := b.ensureAddrs(ctx, addrs); err != nil {
		return err
	}

	conf, want, err := b.render(w, addrs, port)
	if err != nil {
		return err
	}
	running := b.proc != nil && !b.proc.exited()
	if running && b.port == port && conf == b.conf {
		return nil // nothing named serves would change
	}
	// Addresses named must take and nobody else may hold: check before
	// starting so a taken port fails fast and the lab tries another.
	restart := !running || b.port != port || b.opts.Reload == ReloadRestart
	var fresh []netip.Addr
	for _, a := range addrs {
		if restart || !b.serving[a] {
			fresh = append(fresh, a)
		}
	}
	if restart && b.proc != nil {
		if err := b.proc.stop(); err != nil {
			b.log.Warn("stopping named for a restart", "err", err)
		}
		b.proc = nil
		b.serving = map[netip.Addr]bool{}
		b.loaded = map[string]bool{}
	}
	probe := fresh
	if restart {
		probe = append(probe, ctl)
	}
	for _, a := range probe {
		if err := portFree(a, port); err != nil {
			return err
		}
	}

	// Until this sync succeeds, what named serves is uncertain: the next
	// sync must not take a matching config for done.
	b.conf, b.loaded = "", map[string]bool{}
	b.gen++
	if err := writeAtomic(b.path(fmt.Sprintf("sync-%d.db", b.gen)), []byte(syncZone(b.gen)), 0o644); err != nil {
		return fmt.Errorf("dnslab: bind: %w", err)
	}
	full := strings.Replace(conf, "@GEN@", fmt.Sprint(b.gen), 1)
	if err := writeAtomic(b.path("named.conf"), []byte(full), 0o644); err != nil {
		return fmt.Errorf("dnslab: bind: %w", err)
	}
	// Zones named fails to load are counted from before the reload: named
	// can log the failure before rndc returns.
	loadErrs, loads := 0, 0
	if restart {
		if b.proc, err = b.startNamed(); err != nil {
			return err
		}
		b.stats.Starts++
	} else {
		loadErrs, loads = b.proc.out.count("not loaded due to errors"), b.proc.out.loads()
		if err := b.rndc(ctx, port, "reconfig"); err != nil {
			return err
		}
	}
	b.port = port

	wait := b.opts.Wait + time.Duration(len(want)/500)*time.Second
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := b.awaitServing(wctx, wait, addrs, want, port, loadErrs, loads); err != nil {
		return fmt.Errorf("%w\nnamed's last words:\n%s", err, b.proc.out.tail(25))
	}
	// Addresses the world took away from BIND (a faulty host) must be free
	// before the lab's own fault listener binds them.
	keep := map[netip.Addr]bool{}
	for _, a := range addrs {
		keep[a] = true
	}
	for a := range b.serving {
		if keep[a] {
			continue
		}
		if err := awaitFree(wctx, a, port); err != nil {
			return fmt.Errorf("dnslab: bind: named still holds %s after reconfig: %w", netip.AddrPortFrom(a, uint16(port)), err)
		}
	}
	b.serving = keep
	b.loaded = map[string]bool{}
	for _, z := range want {
		b.loaded[z.key()] = true
	}
	b.removeStaleFiles()
	b.conf = conf
	b.dyn.promote()
	d := time.Since(start)
	b.stats.Syncs++
	b.stats.LastSync = d
	b.stats.TotalSync += d
	b.log.Debug("synced", "views", b.stats.Views, "zones", b.stats.Zones, "took", d, "mode", b.opts.Reload)
	return nil
}

const syncOrigin = "sync.nsguard-lab."

func syncZone(gen int) string {
	return fmt.Sprintf("%s 0 CH SOA %s hostmaster.%s %d 0 0 0 0\n%s 0 CH NS %s\n", syncOrigin, syncOrigin, syncOrigin, gen, syncOrigin, syncOrigin)
}

// viewZone is one zone named must serve in one view.
type viewZone struct {
	addr   netip.Addr
	origin string
	file   string
	serial uint32
}

func (z viewZone) key() string { return z.addr.String() + " " + z.origin + " " + z.file }

// render writes missing zone files and returns named.conf (with @GEN@ for
// the generation) and the (view, zone) pairs it configures.
func (b *BIND) render(w *World, addrs []netip.Addr, port int) (string, []viewZone, error) {
	sorted := append([]netip.Addr(nil), addrs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Less(sorted[j]) })
	var c strings.Builder
	fmt.Fprintf(&c, `// Generated by nsguard's DNS lab (lab/dnslab/bind.go); rewritten on every change.
include %q;
controls {
	inet %s port %d allow { 127.0.0.0/8; } keys { "nsguard-lab"; };
};
options {
	directory %q;
	pid-file %q;
	session-keyfile %q;
	managed-keys-directory %q;
	listen-on port %d {`, b.path("rndc.key"), controlAddr(w.Base), port, b.dir, b.path("named.pid"), b.path("session.key"), b.dir, port)
	for _, a := range sorted {
		fmt.Fprintf(&c, " %s;", a)
	}
	if len(sorted) == 0 {
		c.WriteString(" none;")
	}
	c.WriteString(` };
	listen-on-v6 { none; };
	// Authoritative only, like every server of the simulated Internet.
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
	empty-zones-enable no;
	// The lab's zones are broken on purpose (a delegation without its glue):
	// serve them as they are, as a real server with bad data does.
	check-integrity no;
	check-names primary ignore;
	// A scenario delegates a domain to 1,600 name servers: BIND's default
	// limit of 100 records per RRset would refuse the zone.
	max-records-per-type 0;
	// The lab tells named when interfaces change (reconfig rescans); a
	// periodic scan could drop an address another lab removed meanwhile.
	automatic-interface-scan no;
	interface-interval 0;
	tcp-clients 1000;
	hostname none;
	server-id none;
};
// The sync marker: every address answers this CHAOS zone's SOA with the
// generation of the config in force, so Sync knows when a change has taken.
// (A CHAOS view also replaces named's built-in _bind view, whose rate limit
// of 3 answers a second would throttle the polling.)
view "nsguard-lab-sync" chaos {
	match-clients { any; };
	recursion no;
	zone "sync.nsguard-lab." chaos { type primary; file "sync-@GEN@.db"; };
};
`)
	keys, err := b.writeKeys(w)
	if err != nil {
		return "", nil, err
	}
	c.WriteString(keys)
	dyn := b.dyn.plan(w, sorted)
	rendered := map[*Zone]string{}
	files := map[string]bool{}
	var want []viewZone
	for _, a := range sorted {
		h := w.HostAt(a)
		if h == nil {
			return "", nil, fmt.Errorf("dnslab: bind: no lab host at %s", a)
		}
		fmt.Fprintf(&c, "view %q {\n\tmatch-clients { any; };\n\tmatch-destinations { %s; };\n\trecursion no;\n", "host-"+a.String(), a)
		origins := append([]string(nil), h.Zones...)
		sort.Strings(origins)
		seen := map[string]bool{}
		for _, origin := range origins {
			z := w.zoneFor(h, origin)
			if z == nil || seen[z.Origin] {
				continue
			}
			seen[z.Origin] = true
			if stmt, vz, ok, err := b.dynamicZone(dyn, w, h, a, z, port); ok || err != nil {
				if err != nil {
					return "", nil, err
				}
				files[vz.file] = true
				c.WriteString(stmt)
				want = append(want, vz)
				continue
			}
			file, ok := rendered[z]
			if !ok {
				var err error
				if file, err = b.writeZone(z); err != nil {
					return "", nil, err
				}
				rendered[z] = file
			}
			files[file] = true
			fmt.Fprintf(&c, "\tzone %q { type primary; file %q; };\n", z.Origin, file)
			want = append(want, viewZone{addr: a, origin: z.Origin, file: file, serial: z.Serial()})
		}
		c.WriteString("};\n")
	}
	b.files = files
	b.stats.Views, b.stats.Zones, b.stats.Files = len(sorted), len(want), len(files)
	return c.String(), want, nil
}

// writeZone writes z to a file named after its content. A changed zone
// gets a new file name, so named (which reuses a zone whose configuration is
// unchanged) loads exactly the changed zones on reconfig, never a stale one.
func (b *BIND) writeZone(z *Zone) (string, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "; zone %s, nsguard lab\n", z.Origin)
	for _, rr := range z.Records() {
		buf.WriteString(rr.String())
		buf.WriteByte('\n')
	}
	sum := sha256.Sum256(buf.Bytes())
	name := "zone-" + hex.EncodeToString(sum[:12]) + ".db"
	p := b.path(name)
	if _, err := os.Stat(p); err == nil {
		return name, nil
	}
	// The NSEC chain is signed with fresh (randomised) ECDSA signatures, so
	// the file is named after the zone's data without it: the same data
	// keeps the same file, and named does not reload it.
	for _, rr := range nsecChain(z) {
		buf.WriteString(rr.String())
		buf.WriteByte('\n')
	}
	if err := writeAtomic(p, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("dnslab: bind: zone %s: %w", z.Origin, err)
	}
	return name, nil
}

// nsecChain returns a signed NSEC chain for a signed zone that has none.
//
// BIND answers with RRSIGs only from zones it considers secure: a DNSKEY
// at the apex and a signed NSEC (or NSEC3PARAM) there. Every real signed
// zone has its denial-of-existence chain; the lab's signer (sign.go) makes
// none, and the in-process server never needs one. Without it BIND serves
// the lab's signed zones with no RRSIG in any answer (only the DS in a
// referral keeps its RRSIG). This adds the chain for BIND; once resign
// builds it (the same code fits there), this finds it present and adds
// nothing.
func nsecChain(z *Zone) []dns.RR {
	if !z.Signed() || z.zsk == nil || len(z.RRset(z.Origin, dns.TypeNSEC)) > 0 {
		return nil
	}
	ttl := uint32(300)
	if soa := z.soa(); len(soa) > 0 {
		ttl = soa[0].(*dns.SOA).Minttl
	}
	var owners []string
	for owner := range z.rrs {
		// Names below a zone cut (glue) are not the zone's data.
		if cut := z.delegation(owner); cut != "" && cut != owner {
			continue
		}
		owners = append(owners, owner)
	}
	sort.Slice(owners, func(i, j int) bool { return canonicalLess(owners[i], owners[j]) })
	var out []dns.RR
	for i, owner := range owners {
		cut := z.delegation(owner) == owner
		types := map[uint16]bool{dns.TypeNSEC: true, dns.TypeRRSIG: true}
		for _, rr := range z.rrs[owner] {
			t := rr.Header().Rrtype
			if t == dns.TypeRRSIG || (cut && t != dns.TypeNS && t != dns.TypeDS) {
				continue
			}
			types[t] = true
		}
		var bitmap []uint16
		for t := range types {
			bitmap = append(bitmap, t)
		}
		sort.Slice(bitmap, func(i, j int) bool { return bitmap[i] < bitmap[j] })
		nsec := &dns.NSEC{
			Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
			NextDomain: owners[(i+1)%len(owners)],
			TypeBitMap: bitmap,
		}
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Ttl: ttl},
			Algorithm:  z.zsk.Algorithm,
			KeyTag:     z.zsk.KeyTag(),
			SignerName: z.Origin,
			Inception:  uint32(z.sigInception.Unix()),
			Expiration: uint32(z.sigExpiration.Unix()),
		}
		if err := sig.Sign(z.zskPriv, []dns.RR{nsec}); err != nil {
			panic(fmt.Sprintf("dnslab: signing %s/NSEC: %v", owner, err))
		}
		if z.corruptSigs {
			sig.Signature = corrupt(sig.Signature)
		}
		out = append(out, nsec, sig)
	}
	return out
}

// canonicalLess orders names as DNSSEC does (RFC 4034 §6.1): label by
// label from the right, each compared as lower-case octets.
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i := 1; i <= len(la) && i <= len(lb); i++ {
		if x, y := la[len(la)-i], lb[len(lb)-i]; x != y {
			return x < y
		}
	}
	return len(la) < len(lb)
}

func (b *BIND) removeStaleFiles() {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		stale := strings.HasPrefix(n, "zone-") && strings.HasSuffix(n, ".db") && !b.files[n]
		// Dynamic zones' files and their journals (bind_update.go).
		stale = stale || strings.HasPrefix(n, "dyn-") && !b.files[strings.TrimSuffix(n, ".jnl")]
		stale = stale || strings.HasPrefix(n, "sync-") && n != fmt.Sprintf("sync-%d.db", b.gen)
		if stale {
			os.Remove(b.path(n))
		}
	}
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// awaitServing polls until every address answers the sync zone's SOA with
// this generation (the new config is in force there) and every (view, zone)
// not confirmed before answers its SOA with authority and the right serial.
func (b *BIND) awaitServing(ctx context.Context, wait time.Duration, addrs []netip.Addr, want []viewZone, port int, loadErrs, loads int) error {
	pending := map[string]func(context.Context) error{}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port)).String()
		pending["address "+ap] = func(ctx context.Context) error { return askSOA(ctx, ap, syncOrigin, dns.ClassCHAOS, uint32(b.gen)) }
	}
	for _, z := range want {
		if b.loaded[z.key()] {
			continue
		}
		ap := netip.AddrPortFrom(z.addr, uint16(port)).String()
		pending["zone "+z.origin+" at "+ap] = func(ctx context.Context) error { return askSOA(ctx, ap, z.origin, dns.ClassINET, z.serial) }
	}
	delay := 5 * time.Millisecond
	for {
		errs := runBounded(ctx, pending, 64)
		for k, err := range errs {
			if err == nil {
				delete(pending, k)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if b.proc.exited() {
			return fmt.Errorf("dnslab: bind: named exited (%v)", b.proc.exitErr())
		}
		if n := b.proc.out.count("not loaded due to errors") - loadErrs; n > 0 {
			// named goes on loading the other zones, and logging their
			// errors: wait until it says it is done, or the next sync
			// would count this one's errors as its own.
			for b.proc.out.loads() <= loads && ctx.Err() == nil && !b.proc.exited() {
				time.Sleep(10 * time.Millisecond)
			}
			n = b.proc.out.count("not loaded due to errors") - loadErrs
			return fmt.Errorf("dnslab: bind: named could not load %d zone(s)", n)
		}
		select {
		case <-ctx.Done():
			var lines []string
			for k := range pending {
				lines = append(lines, fmt.Sprintf("%s: %v", k, errs[k]))
			}
			sort.Strings(lines)
			if len(lines) > 8 {
				lines = append(lines[:8], fmt.Sprintf("… and %d more", len(lines)-8))
			}
			return fmt.Errorf("dnslab: bind: named is not serving the lab after %s:\n  %s", wait, strings.Join(lines, "\n  "))
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// runBounded runs every check with at most n in flight.
func runBounded(ctx context.Context, checks map[string]func(context.Context) error, n int) map[string]error {
	var mu sync.Mutex
	out := make(map[string]error, len(checks))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for k, f := range checks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := f(ctx)
			mu.Lock()
			out[k] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func exchange(ctx context.Context, ap string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	r, _, err := c.ExchangeContext(ctx, m, ap)
	return r, err
}

func askSOA(ctx context.Context, ap, origin string, class uint16, serial uint32) error {
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	m.Question[0].Qclass = class
	m.RecursionDesired = false
	r, err := exchange(ctx, ap, m)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return fmt.Errorf("%s, aa=%v", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			if soa.Serial != serial {
				return fmt.Errorf("serial %d, want %d", soa.Serial, serial)
			}
			return nil
		}
	}
	return errors.New("no SOA in the answer")
}

// portFree reports whether addr:port can be bound over UDP and TCP; the
// error wraps EADDRINUSE when it is taken, so the lab tries another port.
func portFree(a netip.Addr, port int) error {
	ap := netip.AddrPortFrom(a, uint16(port)).String()
	pc, err := net.ListenPacket("udp", ap)
	if err != nil {
		return fmt.Errorf("dnslab: bind: udp %s is taken: %w", ap, err)
	}
	pc.Close()
	l, err := net.Listen("tcp", ap)
	if err != nil {
		return fmt.Errorf("dnslab: bind: tcp %s is taken: %w", ap, err)
	}
	l.Close()
	return nil
}

func awaitFree(ctx context.Context, a netip.Addr, port int) error {
	for {
		err := portFree(a, port)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// rndc sends one command over the control channel.
func (b *BIND) rndc(ctx context.Context, port int, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Wait)
	defer cancel()
	full := append([]string{"-c", b.path("rndc.conf"), "-s", controlAddr(b.base).String(), "-p", fmt.Sprint(port)}, args...)
	out, err := exec.CommandContext(ctx, b.opts.RNDC, full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dnslab: bind: rndc %s: %w: %s\nnamed's last words:\n%s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)), b.proc.out.tail(25))
	}
	return nil
}

// Close stops named, removes the addresses this backend added and, when it
// made it, the backend's directory.
func (b *BIND) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if b.proc != nil {
		if err := b.proc.stop(); err != nil {
			errs = append(errs, err)
		}
		b.proc = nil
	}
	if err := b.removeAddrs(); err != nil {
		errs = append(errs, err)
	}
	if b.lock != nil {
		b.lock.Close() // releases the flock
		b.lock = nil
	}
	if b.own {
		os.RemoveAll(b.dir)
	}
	return errors.Join(errs...)
}

// lockBase takes an exclusive lock on the lab's /16 for the backend's
// lifetime: it owns the addresses it adds there, and a second BIND lab on
// the same base (another engineer's test run) waits instead of removing
// them under it. The kernel drops the lock if the process dies.
func (b *BIND) lockBase(ctx context.Context, base byte) error {
	if b.lock != nil {
		if base != b.base {
			return fmt.Errorf("dnslab: bind: the backend serves 127.%d.0.0/16, not 127.%d.0.0/16", b.base, base)
		}
		return nil
	}
	p := filepath.Join(os.TempDir(), fmt.Sprintf("nsguard-dnslab-127.%d.lock", base))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("dnslab: bind: lock %s: %w", p, err)
	}
	deadline := time.Now().Add(b.opts.LockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("dnslab: bind: lock %s: %w", p, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return fmt.Errorf("dnslab: bind: another BIND lab has held 127.%d.0.0/16 for over %s (lock %s): give this lab another Options.Base", base, b.opts.LockWait, p)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	b.lock, b.base = f, base
	return nil
}

// ensureAddrs puts every address on the interface, recording the ones it
// added (an address that was already there is left alone on Close).
func (b *BIND) ensureAddrs(ctx context.Context, addrs []netip.Addr) error {
	have, err := b.ifaceAddrs(ctx)
	if err != nil {
		return err
	}
	var cmds []string
	var adding []netip.Addr
	for _, a := range addrs {
		if !have[a] {
			cmds = append(cmds, fmt.Sprintf("addr add %s/32 dev %s", a, b.opts.Interface))
			adding = append(adding, a)
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	batchErr := b.ipBatch(ctx, cmds)
	// Whatever the batch did, own exactly what is there now and was not before.
	now, err := b.ifaceAddrs(ctx)
	if err != nil {
		return err
	}
	for _, a := range adding {
		if now[a] {
			b.added[a] = true
		}
	}
	if batchErr != nil {
		return fmt.Errorf("dnslab: bind: adding the lab addresses to %s (run as root): %w", b.opts.Interface, batchErr)
	}
	return nil
}

func (b *BIND) removeAddrs() error {
	if len(b.added) == 0 {
		return nil
	}
	var cmds []string
	for a := range b.added {
		cmds = append(cmds, fmt.Sprintf("addr del %s/32 dev %s", a, b.opts.Interface))
	}
	sort.Strings(cmds)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.ipBatch(ctx, cmds); err != nil {
		return fmt.Errorf("dnslab: bind: removing the lab addresses from %s: %w", b.opts.Interface, err)
	}
	b.added = map[netip.Addr]bool{}
	return nil
}

func (b *BIND) ipBatch(ctx context.Context, cmds []string) error {
	cmd := exec.CommandContext(ctx, b.opts.IP, "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *BIND) ifaceAddrs(ctx context.Context) (map[netip.Addr]bool, error) {
	out, err := exec.CommandContext(ctx, b.opts.IP, "-4", "-o", "addr", "show", "dev", b.opts.Interface).Output()
	if err != nil {
		return nil, fmt.Errorf("dnslab: bind: listing the addresses of %s: %w", b.opts.Interface, err)
	}
	have := map[netip.Addr]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if p, err := netip.ParsePrefix(f[i+1]); err == nil {
					have[p.Addr()] = true
				}
			}
		}
	}
	return have, nil
}

// namedProc is one running named.
type namedProc struct {
	cmd  *exec.Cmd
	out  *ringLog
	done chan struct{}
	err  error
}

func (b *BIND) startNamed() (*namedProc, error) {
	// -g: foreground, log to stderr; -4: the lab is IPv4. named runs as the
	// invoking user (root here and in CI) without -u.
	cmd := exec.Command(b.opts.Named, "-g", "-4", "-c", b.path("named.conf"))
	cmd.Dir = b.dir
	// Kill named if the test binary dies before Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &namedProc{cmd: cmd, out: newRingLog(200), done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dnslab: bind: starting named: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.out.add(sc.Text())
			b.log.Debug("named", "line", sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *namedProc) exited() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *namedProc) exitErr() error {
	<-p.done
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// stop asks named to shut down and kills it if it takes too long.
func (p *namedProc) stop() error {
	if p.exited() {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("dnslab: bind: named ignored SIGTERM for 10s and was killed\n%s", p.out.tail(10))
}

// ringLog keeps named's last lines.
type ringLog struct {
	mu     sync.Mutex
	lines  []string
	next   int
	counts map[string]int
}

var watchedLines = []string{"not loaded due to errors", "all zones loaded", "any newly configured zones are now loaded"}

func newRingLog(n int) *ringLog {
	return &ringLog{lines: make([]string, 0, n), counts: map[string]int{}}
}

func (r *ringLog) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range watchedLines {
		if strings.Contains(line, w) {
			r.counts[w]++
		}
	}
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, line)
		return
	}
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
}

func (r *ringLog) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[s]
}

// loads counts the loads named has finished: at start, and after each
// reconfig (its zones' errors, if any, are all logged by then).
func (r *ringLog) loads() int {
	return r.count("all zones loaded") + r.count("any newly configured zones are now loaded")
}

func (r *ringLog) tail(n int) string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	all := append(append([]string(nil), r.lines[r.next:]...), r.lines[:r.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}
