// Package pages serves nsguard's read-only status pages: the inventory at
// a glance, a page per domain (delegation, approved vs now, DNSSEC,
// records, registration, findings, a 30-day timeline, playbooks and
// contacts), incidents with the messages sent to Slack, the latest audit
// and the failover runs. Pages are server-rendered html/template with an
// embedded stylesheet and no script, read from a Source (StoreSource over
// the daemon's store), and sent with a strict Content-Security-Policy.
package pages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

//go:embed static/icon.svg
var iconSVG []byte

// Options configure the pages.
type Options struct {
	Source Source
	// BasePath is the prefix the pages live under: "/" or "/nsguard".
	BasePath string
	// BasicAuthFile, when set, is an htpasswd file of bcrypt hashes every
	// request must match.
	BasicAuthFile string
	// Refresh makes the overview, incident and domain pages reload
	// themselves (0: never).
	Refresh time.Duration
	// PageSize is the overview's rows per page (default 100).
	PageSize int
	Logger   *slog.Logger
	Now      func() time.Time
}

// Pages is the http.Handler of every page.
type Pages struct {
	o        Options
	base     string // "" at the root, else "/nsguard"
	mux      *http.ServeMux
	tmpl     map[string]*template.Template
	idx      *index
	auth     *basicAuth
	cssPath  string
	iconPath string
	log      *slog.Logger
}

// CSP allows nothing but the page itself, the stylesheet and forms to the
// same origin: no script at all, no inline style, no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageNames are the templates, one per page (templates/NAME.html).
var pageNames = []string{"overview", "domain", "incidents", "incident", "audit", "failover", "error"}

// New builds the pages.
func New(o Options) (*Pages, error) {
	if o.Source == nil {
		return nil, errors.New("pages: no source")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	p := &Pages{o: o, base: strings.TrimRight(o.BasePath, "/"), log: o.Logger.With("component", "pages")}
	if p.base != "" && !strings.HasPrefix(p.base, "/") {
		return nil, fmt.Errorf("pages: base path %q must start with /", o.BasePath)
	}
	sum := sha256.Sum256(styleCSS)
	p.cssPath = "/static/style." + hex.EncodeToString(sum[:6]) + ".css"
	sum = sha256.Sum256(iconSVG)
	p.iconPath = "/static/icon." + hex.EncodeToString(sum[:6]) + ".svg"
	if o.BasicAuthFile != "" {
		a, err := newBasicAuth(o.BasicAuthFile, p.log, o.Now)
		if err != nil {
			return nil, err
		}
		p.auth = a
	}
	if err := p.parse(); err != nil {
		return nil, err
	}
	p.idx = newIndex(o.Source, p.log, o.Now)
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", p.overview)
	m.HandleFunc("GET /domains/{name}", p.domain)
	m.HandleFunc("GET /incidents", p.incidents)
	m.HandleFunc("GET /incidents/{id}", p.incident)
	m.HandleFunc("GET /audit", p.audit)
	m.HandleFunc("GET /failover", p.failover)
	m.HandleFunc("GET "+p.cssPath, p.static("text/css; charset=utf-8", styleCSS))
	m.HandleFunc("GET "+p.iconPath, p.static("image/svg+xml", iconSVG))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	p.mux = m
	return p, nil
}

// Mount registers the pages on a daemon's mux at the base path; the mux's
// more specific patterns (/metrics, /healthz, /readyz) keep their paths.
func (p *Pages) Mount(mux *http.ServeMux) {
	if p.base == "" {
		mux.Handle("/", p)
		return
	}
	mux.Handle(p.base+"/", p)
	mux.Handle(p.base, http.RedirectHandler(p.base+"/", http.StatusMovedPermanently))
}

// ServeHTTP answers every page request: security headers, GET and HEAD
// only, the password when one is configured, then the page.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: these pages are read-only", http.StatusMethodNotAllowed)
		return
	}
	if p.auth != nil && !p.auth.allow(r) {
		h.Set("WWW-Authenticate", authRealm)
		http.Error(w, "401 unauthorized", http.StatusUnauthorized)
		return
	}
	path := r.URL.Path
	if p.base != "" {
		rest, ok := strings.CutPrefix(path, p.base)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			p.fail(w, r, http.StatusNotFound, "There is no such page.")
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		r2.URL = &u
		r = r2
	}
	p.mux.ServeHTTP(w, r)
}

// static serves an embedded file under a name that carries its hash, so
// browsers may keep it for good.
func (p *Pages) static(contentType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Write(body)
	}
}

// page is what every template receives.
type page struct {
	Title   string
	Nav     string
	Base    string
	CSS     string
	Icon    string
	Refresh int
	Now     time.Time
	Data    any
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, refresh bool, data any) {
	pg := page{Title: title, Nav: nav, Base: p.base, CSS: p.base + p.cssPath, Icon: p.base + p.iconPath, Now: p.o.Now(), Data: data}
	if refresh && p.o.Refresh > 0 {
		pg.Refresh = int(p.o.Refresh.Seconds())
	}
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", pg); err != nil {
		p.log.Error("pages: rendering", "page", name, "err", err)
		http.Error(w, "500 the page could not be rendered; the daemon's log says why", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// fail renders the error page. msg is fixed text or escaped by the
// template; nothing from the request is echoed unescaped.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.render(w, r, status, "error", http.StatusText(status), "", false, struct {
		Status int
		Msg    string
	}{status, msg})
}

// storeFailed logs a read error and renders a 500 that does not repeat it
// (errors can carry paths; the log is the place for them).
func (p *Pages) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	p.log.Error("pages: reading "+what, "path", r.URL.Path, "err", err)
	p.fail(w, r, http.StatusInternalServerError, "nsguard could not read "+what+" from its store; the daemon's log says why.")
}

func (p *Pages) parse() error {
	p.tmpl = map[string]*template.Template{}
	layout, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return err
	}
	funcs := p.funcs()
	for _, name := range pageNames {
		body, err := fs.ReadFile(templateFS, "templates/"+name+".html")
		if err != nil {
			return err
		}
		t, err := template.New(name).Funcs(funcs).Parse(string(layout))
		if err == nil {
			_, err = t.Parse(string(body))
		}
		if err != nil {
			return fmt.Errorf("pages: template %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	return nil
}

const timeFormat = "2006-01-02 15:04:05Z"

func (p *Pages) funcs() template.FuncMap {
	return template.FuncMap{
		// path builds a link under the base path, each part escaped.
		"path": func(parts ...any) string {
			var b strings.Builder
			b.WriteString(p.base)
			for _, x := range parts {
				b.WriteString("/")
				b.WriteString(url.PathEscape(fmt.Sprint(x)))
			}
			if len(parts) == 0 {
				b.WriteString("/")
			}
			return b.String()
		},
		"t": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format(timeFormat)
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return ago(p.o.Now().Sub(t)) + " ago"
		},
		"since": func(from, to time.Time) string {
			if from.IsZero() {
				return "—"
			}
			if to.IsZero() {
				to = p.o.Now()
			}
			return ago(to.Sub(from))
		},
		"ms": func(from, to time.Time) string {
			if from.IsZero() || to.IsZero() {
				return "—"
			}
			return to.Sub(from).Round(time.Millisecond).String()
		},
		"sev":   func(s finding.Severity) string { return s.String() },
		"upper": strings.ToUpper,
		"join":  strings.Join,
		"dash": func(s string) string {
			if strings.TrimSpace(s) == "" {
				return "—"
			}
			return s
		},
		"title": func(id string) string {
			if c, ok := finding.Lookup(id); ok {
				return c.Title
			}
			return ""
		},
		"add": func(a, b int) int { return a + b },
	}
}

// ago renders a duration the way a person says it.
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
