package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/notify"
)

// OpenConfig opens the store the config names: the SQLite file at
// store.path, or the PostgreSQL database at store.url (or the URL read from
// store.url_file or store.url_env). The daemon and every command open their
// store here. Operations only SQLite has (its file) stay reachable with a
// type assertion to *SQLite.
func OpenConfig(ctx context.Context, c config.Store, opts Options) (Store, error) {
	switch {
	case c.Path != "":
		s, err := Open(ctx, c.Path, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case c.URL != "", c.URLFile != "", c.URLEnv != "":
		u := c.URL
		if u == "" {
			var err error
			if u, err = notify.ReadSecret(c.URLFile, c.URLEnv); err != nil {
				return nil, fmt.Errorf("store: the PostgreSQL URL: %w", err)
			}
		}
		s, err := OpenPostgres(ctx, u, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, errNoStore
}

// errNoStore is OpenConfig's answer to a config naming no store.
var errNoStore = errors.New("store: no store configured (set store.path, or store.url, store.url_file or store.url_env)")
