package pages_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nsguard/nsguard/failover"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/lab/dnslab"
	"github.com/nsguard/nsguard/lab/reglab"
)

// browser is a headless Debian Chromium driven over the DevTools protocol,
// with a fresh profile, collecting what the pages write to the console
// (a CSP violation is logged there).
type browser struct {
	t       *testing.T
	ctx     context.Context
	out     string
	mu      sync.Mutex
	console []string
	// secrets must appear on no page checkA11y looks at.
	secrets []string
}

// chromiumPath finds Debian's chromium; scripts/deps.sh installs it.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("NSGUARD_CHROMIUM"), "chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not installed: run scripts/deps.sh (Debian package chromium), or set NSGUARD_CHROMIUM")
	return ""
}

// artefacts is where screenshots go: $NSGUARD_ARTIFACTS/TEST, else a
// temporary directory the log names.
func artefacts(t *testing.T) string {
	dir := t.TempDir()
	if base := os.Getenv("NSGUARD_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	b := &browser{t: t, ctx: ctx, out: artefacts(t)}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser now, and collect the console.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, string(m.Type)+": "+m.Text)
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *browser) open(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("opening %s: %v", url, err)
	}
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// text is what a person reads on the page.
func (b *browser) text() string { return eval[string](b, `document.body.innerText`) }

// shot saves the viewport (full false) or the whole page as NAME.png and
// returns the file.
func (b *browser) shot(name string, full bool) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	act := chromedp.CaptureScreenshot()
	if full {
		act = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, act)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.out, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// a11y is the accessibility smoke check the browser computes.
type a11y struct {
	Title       string   `json:"title"`
	Lang        string   `json:"lang"`
	Main        int      `json:"main"`
	Nav         int      `json:"nav"`
	Header      int      `json:"header"`
	H1          int      `json:"h1"`
	Tables      int      `json:"tables"`
	NoHeaders   int      `json:"noHeaders"`
	NoScope     []string `json:"noScope"`
	Unlabelled  int      `json:"unlabelled"`
	Styled      int      `json:"styled"`
	Scripts     int      `json:"scripts"`
	HeaderColor string   `json:"headerColor"`
}

const a11yJS = `(() => {
  const ths = Array.from(document.querySelectorAll('th'));
  return {
    title: document.title,
    lang: document.documentElement.lang,
    main: document.querySelectorAll('main').length,
    nav: document.querySelectorAll('nav').length,
    header: document.querySelectorAll('header.site').length,
    h1: document.querySelectorAll('h1').length,
    tables: document.querySelectorAll('table').length,
    noHeaders: Array.from(document.querySelectorAll('table')).filter(t => t.querySelectorAll('th').length === 0).length,
    noScope: ths.filter(th => !['col', 'row'].includes(th.getAttribute('scope'))).map(th => th.textContent.trim()).slice(0, 5),
    unlabelled: Array.from(document.querySelectorAll('select, input, button')).filter(e => e.tagName !== 'BUTTON' ? !(e.labels && e.labels.length) : !e.textContent.trim()).length,
    styled: document.querySelectorAll('[style]').length,
    scripts: document.querySelectorAll('script').length,
    headerColor: getComputedStyle(document.querySelector('header.site')).backgroundColor,
  };
})()`

// checkA11y runs the smoke check on the open page: a title, the landmarks,
// table headers with a scope, labelled controls, no script and no inline
// style (the CSP forbids both), the stylesheet applied.
func (b *browser) checkA11y(page string) {
	b.t.Helper()
	r := eval[a11y](b, a11yJS)
	html := eval[string](b, `document.documentElement.outerHTML`)
	for _, sec := range b.secrets {
		if strings.Contains(html, sec) {
			b.t.Errorf("%s: a secret is on the page (%.6s…)", page, sec)
		}
	}
	switch {
	case !strings.HasSuffix(r.Title, "· nsguard") || len(r.Title) < len("x · nsguard"):
		b.t.Errorf("%s: title %q", page, r.Title)
	case r.Lang != "en":
		b.t.Errorf("%s: html lang %q", page, r.Lang)
	case r.Main != 1 || r.Nav < 1 || r.Header != 1 || r.H1 != 1:
		b.t.Errorf("%s: landmarks main %d nav %d header %d, h1 %d", page, r.Main, r.Nav, r.Header, r.H1)
	case r.NoHeaders > 0 || len(r.NoScope) > 0:
		b.t.Errorf("%s: %d of %d tables without th, th without scope: %q", page, r.NoHeaders, r.Tables, r.NoScope)
	case r.Unlabelled > 0:
		b.t.Errorf("%s: %d form controls without a label", page, r.Unlabelled)
	case r.Styled > 0 || r.Scripts > 0:
		b.t.Errorf("%s: %d inline styles, %d scripts", page, r.Styled, r.Scripts)
	case r.HeaderColor != "rgb(27, 31, 36)":
		b.t.Errorf("%s: the stylesheet is not applied (header background %s)", page, r.HeaderColor)
	}
}

// overviewStates reads each row's domain and state off the overview.
func (b *browser) overviewStates() map[string]string {
	rows := eval[[][2]string](b, `Array.from(document.querySelectorAll('#domain-table tbody tr')).map(r => [r.dataset.domain, r.querySelector('[data-state]').dataset.state])`)
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// The story in a real browser, on the lab the demo uses: healthy,
// everything ok; the delegation hijacked, the overview critical and the
// domain page showing DELEGATION_CHANGED with the attacker's and the
// approved name servers and the difference; the failover run with its
// steps; the page Slack got. Every page passes the accessibility smoke
// check and the browser reports no CSP violation.
func TestBrowserHijackAndFailover(t *testing.T) {
	r := newRig(t, rigOptions{World: dnslab.FailoverWorld, Playbook: true, UI: "  refresh: 0s\n"})
	if err := r.env.Reg.Update("shop-backup.net", func(d *reglab.Domain) { d.Registrar, d.IANAID = "CSC Corporate Domains, Inc.", "299" }); err != nil {
		t.Fatal(err)
	}
	r.approveAll()
	r.start()
	b := newBrowser(t)
	b.secrets = []string{slackToken, "s3cr3t", r.env.DNS.World().TSIG[dnslab.SwitchKey]}
	base := "http://" + r.addr

	// Healthy: every domain ok.
	var states map[string]string
	r.waitFor(15*time.Second, "every domain ok", func() bool {
		b.open(base + "/")
		states = b.overviewStates()
		for _, d := range r.cfg.Domains {
			if states[d.Name] != "ok" {
				return false
			}
		}
		return len(states) == len(r.cfg.Domains)
	})
	b.checkA11y("overview")
	b.shot("1-overview-healthy", false)

	// The hijack.
	if err := r.env.DNS.Hijack(context.Background(), "shop-example.com"); err != nil {
		t.Fatal(err)
	}
	r.waitFor(20*time.Second, "the overview to mark shop-example.com critical", func() bool {
		b.open(base + "/")
		states = b.overviewStates()
		return states["shop-example.com"] == "critical"
	})
	for d, s := range states {
		if d != "shop-example.com" && s != "ok" {
			t.Errorf("%s is %s during the hijack of another domain", d, s)
		}
	}
	// Wait for the incident, so the overview shows it and its link.
	r.waitFor(20*time.Second, "the incident on the overview", func() bool {
		b.open(base + "/")
		return strings.Contains(b.text(), "#1")
	})
	first := eval[string](b, `document.querySelector('#domain-table tbody tr').dataset.domain`)
	if first != "shop-example.com" {
		t.Errorf("the domain with an open incident is not first: %s", first)
	}
	overviewShot := b.shot("2-overview-hijack", false)

	b.open(base + "/domains/shop-example.com")
	b.checkA11y("domain")
	text := b.text()
	for _, want := range []string{"DELEGATION_CHANGED", "NS_NOT_AS_DECLARED", "ns1.attacker.net.", "ns2.attacker.net.", "ns1.provider-a.net.", "ns1.provider-b.org.", "DIFFERENT", "CHANGE parent NS", "shop-to-backup", "compliance@icann.org"} {
		if !strings.Contains(text, want) {
			t.Errorf("the domain page lacks %q", want)
		}
	}
	// The parent's new NS beside the approved ones, in one row of the
	// approved-vs-now table, marked as different.
	row := eval[string](b, `Array.from(document.querySelectorAll('table.compare tbody tr.differs')).map(r => r.innerText).find(t => t.startsWith('parent NS')) || ''`)
	if !strings.Contains(row, "ns1.provider-a.net.") || !strings.Contains(row, "ns1.attacker.net.") || !strings.Contains(row, "DIFFERENT") {
		t.Errorf("no approved-vs-now row for the parent NS: %q", row)
	}
	if n := eval[int](b, `document.querySelectorAll('figure.timeline svg rect.bar').length`); n < 1 {
		t.Errorf("the timeline draws no incident bar")
	}
	domainShot := b.shot("3-domain-hijack", false)
	b.shot("3-domain-hijack-full", true)

	// The on-call runs the playbook from the CLI; the page shows the run.
	runFailover(t, r)
	b.open(base + "/failover")
	b.checkA11y("failover")
	text = b.text()
	steps := eval[[]string](b, `Array.from(document.querySelectorAll('article.run table.steps tbody tr')).map(r => r.innerText.replace(/\s+/g, ' '))`)
	if len(steps) != 3 {
		t.Errorf("the run shows %d steps, want 3: %q", len(steps), steps)
	}
	for i, want := range []string{"repoint api", "verify", "webhook"} {
		if i < len(steps) && (!strings.Contains(steps[i], want) || !strings.Contains(steps[i], "DONE")) {
			t.Errorf("step %d: %q, want %s DONE", i+1, steps[i], want)
		}
	}
	for _, want := range []string{"Run 1", "DONE", "verified", "on-call", "api.shop-backup.net.", "backup-healthy"} {
		if !strings.Contains(text, want) {
			t.Errorf("the failover page lacks %q", want)
		}
	}
	b.shot("4-failover", true)

	// The incident and the messages Slack got.
	b.open(base + "/incidents")
	b.checkA11y("incidents")
	b.open(base + "/incidents/1")
	b.checkA11y("incident")
	text = b.text()
	for _, want := range []string{"CRITICAL · shop-example.com", "DELEGATION_CHANGED", "sent", "Fail over: nsguard failover plan shop-to-backup"} {
		if !strings.Contains(text, want) {
			t.Errorf("the incident page lacks %q", want)
		}
	}
	b.shot("5-incident", true)
	b.open(base + "/audit")
	b.checkA11y("audit")
	b.shot("6-audit", true)

	b.mu.Lock()
	for _, m := range b.console {
		t.Errorf("console: %s", m)
	}
	b.mu.Unlock()

	if os.Getenv("NSGUARD_UPDATE_SCREENSHOTS") != "" {
		for from, to := range map[string]string{overviewShot: "../docs/pages-overview.png", domainShot: "../docs/pages-domain.png"} {
			png, err := os.ReadFile(from)
			if err == nil {
				err = os.WriteFile(to, png, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Log("docs/pages-overview.png and docs/pages-domain.png updated")
	}
}

// runFailover runs the playbook as `nsguard failover run --yes` would.
func runFailover(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, r.cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ck, err := checker.New(r.cfg, checker.Options{HTTPClient: reglab.HTTPClient(), Dial: reglab.DialLoopback})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	eng, err := failover.New(r.cfg, failover.Options{Store: st, Checker: ck})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	res, err := eng.Run(ctx, "shop-to-backup", failover.RunOptions{By: "on-call"})
	if err != nil {
		t.Fatalf("failover run: %v", err)
	}
	if !res.Verified {
		t.Fatalf("the run was not verified: %+v", res)
	}
}
