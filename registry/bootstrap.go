package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openrdap/rdap/bootstrap"
)

// bootstrapTTL is how long the IANA RDAP bootstrap file is reused; IANA
// asks clients not to fetch it more than daily.
const bootstrapTTL = 24 * time.Hour

// BootstrapInfo says which RDAP bootstrap file is in use and how old it is.
type BootstrapInfo struct {
	Source    string    `json:"source"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// CachePath is the on-disk copy ("" when not cached on disk).
	CachePath string `json:"cache_path,omitempty"`
}

type bootstrapState struct {
	mu sync.Mutex
	// source is the registry.rdap_bootstrap reg was read from: a copy
	// from another source is never used.
	source    string
	reg       *bootstrap.DNSRegistry
	fetchedAt time.Time
}

// Bootstrap reports the RDAP bootstrap file in use (zero FetchedAt before
// the first RDAP lookup).
func (c *Client) Bootstrap() BootstrapInfo {
	c.boot.mu.Lock()
	defer c.boot.mu.Unlock()
	info := BootstrapInfo{Source: c.cfg.Registry.RDAPBootstrap}
	if c.boot.source == info.Source {
		info.FetchedAt = c.boot.fetchedAt
	}
	if c.cache.dir != "" && isHTTPURL(info.Source) {
		info.CachePath = c.bootstrapCachePath(info.Source)
	}
	return info
}

// bootstrapCachePath is where the bootstrap file from src is kept on disk:
// one file per source URL, so pointing registry.rdap_bootstrap somewhere
// else fetches the new file at once instead of reusing the old one for a
// day.
func (c *Client) bootstrapCachePath(src string) string {
	sum := sha256.Sum256([]byte(src))
	return filepath.Join(c.cache.dir, "rdap-bootstrap", hex.EncodeToString(sum[:8])+".json")
}

// rdapBaseFor returns the RDAP base URL for a domain: registry.rdap_servers
// (longest suffix) first, then the bootstrap file. nil without error means
// the TLD has no RDAP service and WHOIS is the way.
func (c *Client) rdapBaseFor(ctx context.Context, name string) (*url.URL, error) {
	if s := longestSuffix(c.cfg.Registry.RDAPServers, name); s != "" {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("registry.rdap_servers: %w", err)
		}
		return u, nil
	}
	if c.cfg.Registry.RDAPBootstrap == "" {
		return nil, nil
	}
	reg, err := c.bootstrapRegistry(ctx)
	if err != nil {
		return nil, err
	}
	ans, err := reg.Lookup(&bootstrap.Question{RegistryType: bootstrap.DNS, Query: name})
	if err != nil || ans == nil || len(ans.URLs) == 0 {
		return nil, nil
	}
	best := ans.URLs[0]
	for _, u := range ans.URLs {
		if u.Scheme == "https" {
			best = u
			break
		}
	}
	cp := *best
	return &cp, nil
}

// bootstrapRegistry returns the parsed DNS bootstrap, fetching it at most
// once per bootstrapTTL. A download failure falls back to the last good
// copy of the same source (memory, then disk), whatever its age: the file
// changes rarely.
func (c *Client) bootstrapRegistry(ctx context.Context) (*bootstrap.DNSRegistry, error) {
	b := &c.boot
	b.mu.Lock()
	defer b.mu.Unlock()
	now := c.now()
	src := c.cfg.Registry.RDAPBootstrap
	if b.source != src {
		b.source, b.reg, b.fetchedAt = src, nil, time.Time{}
	}
	if b.reg != nil && now.Sub(b.fetchedAt) < bootstrapTTL {
		return b.reg, nil
	}
	if !isHTTPURL(src) {
		data, err := readFileBounded(src)
		if err == nil {
			var reg *bootstrap.DNSRegistry
			if reg, err = bootstrap.NewDNSRegistry(data); err == nil {
				b.reg, b.fetchedAt = reg, now
				return reg, nil
			}
		}
		return nil, fmt.Errorf("RDAP bootstrap file %s: %w", src, err)
	}

	cachePath := ""
	if c.cache.dir != "" {
		cachePath = c.bootstrapCachePath(src)
		if b.reg == nil {
			if st, err := os.Stat(cachePath); err == nil {
				if data, err := readFileBounded(cachePath); err == nil {
					if reg, err := bootstrap.NewDNSRegistry(data); err == nil {
						b.reg, b.fetchedAt = reg, st.ModTime()
						if now.Sub(b.fetchedAt) < bootstrapTTL {
							return reg, nil
						}
					}
				}
			}
		}
	}

	data, err := c.download(ctx, src)
	var reg *bootstrap.DNSRegistry
	if err == nil {
		reg, err = bootstrap.NewDNSRegistry(data)
	}
	if err != nil {
		if b.reg != nil && ctx.Err() == nil {
			c.log.Warn("using an old RDAP bootstrap file", "source", src, "fetched_at", b.fetchedAt, "err", err)
			return b.reg, nil
		}
		return nil, fmt.Errorf("RDAP bootstrap %s: %w", src, err)
	}
	b.reg, b.fetchedAt = reg, now
	if cachePath != "" {
		if err := writeAtomic(cachePath, data); err != nil {
			c.log.Warn("cannot cache the RDAP bootstrap file", "path", cachePath, "err", err)
		}
	}
	return reg, nil
}

func (c *Client) download(ctx context.Context, src string) ([]byte, error) {
	u, err := url.Parse(src)
	if err != nil {
		return nil, err
	}
	if err := c.polite.wait(ctx, u.Host); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, http.NoBody)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusTooManyRequests {
			c.polite.limited(u.Host, retryAfter(resp.Header, c.now()))
		}
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxAnswer {
		return nil, ErrTooLarge
	}
	return data, nil
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
