package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nsguard/nsguard/audit"
	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/pages"
	"github.com/nsguard/nsguard/registry"
)

// handler serves /metrics, /healthz (the process is alive: restarting it
// would not help with anything /readyz reports), /readyz (the first full
// cycle is done and every part can do its job; otherwise 503 and why,
// one line per part; its first line says the role: leader, follower and
// who leads, probe) and the status pages under ui.base_path.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		problems := d.health.Problems()
		if !d.ready.Load() {
			problems = append([]string{"first check cycle not finished"}, problems...)
		}
		role := d.role(r.Context())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: nsguard cannot do its whole job; "+role)
			for _, p := range problems {
				fmt.Fprintln(w, p)
			}
			return
		}
		fmt.Fprintln(w, "ready: "+role)
	})
	if d.ui != nil {
		d.ui.Mount(mux)
	}
	return mux
}

// newPages builds the status pages over the daemon's store (ui.enabled).
// Contact sheets come from the registry client's caches, which the
// registration cycle fills; until the first scheduled audit the audit page
// analyses the stored observations (without the dependency walk, which
// needs the network).
func (d *Daemon) newPages(cfg *config.Config) error {
	if !cfg.UI.Enabled {
		return nil
	}
	d.uiSrc = pages.NewStoreSource(pages.StoreSourceOptions{
		Store:  d.st,
		Config: func() *config.Config { c, _ := d.current(); return c },
		ContactSheet: func(ctx context.Context, domain string) (*registry.ContactSheet, error) {
			_, ck := d.current()
			return ck.Registry.Contacts(ctx, domain)
		},
		ComputeAudit: func(ctx context.Context) (*audit.Report, error) {
			c, _ := d.current()
			inputs, err := audit.Gather(ctx, audit.Targets(c), StoredSource(d.st, nil))
			if err != nil {
				return nil, err
			}
			return audit.Analyze(c, inputs, d.now()), nil
		},
		Now: d.now,
	})
	ui, err := pages.New(pages.Options{Source: d.uiSrc, BasePath: cfg.UI.BasePath, BasicAuthFile: cfg.UI.BasicAuthFile,
		Refresh: cfg.UI.Refresh.D(), Logger: d.opts.Logger, Now: d.now})
	if err != nil {
		return fmt.Errorf("status pages: %w", err)
	}
	d.ui = ui
	if cfg.UI.BasicAuthFile == "" && !loopback(cfg.Listen) && d.opts.Listener == nil {
		d.log.Warn("the status pages are served without a password on a non-loopback address; set ui.basic_auth_file or put them behind an authenticating proxy (docs/pages.md)", "listen", cfg.Listen)
	}
	return nil
}

// loopback reports whether a listen address only accepts local clients.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
