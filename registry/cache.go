package registry

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// diskCache keeps registration records, IANA TLD data and the RDAP
// bootstrap file on disk, so a `nsguard check` run every minute by a
// monitoring system asks each registry at most once per registration
// period, like the daemon. An unwritable directory degrades to memory only.
type diskCache struct {
	dir  string // "" disables the disk cache
	log  *slog.Logger
	warn sync.Once
}

func (d *diskCache) path(kind, key string) string {
	// Keys are normalised domain names or TLDs; anything else is refused
	// so a key can never climb out of the directory.
	if key == "" || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		return ""
	}
	return filepath.Join(d.dir, kind, key+".json")
}

// load decodes a cached entry into v; false when absent or unreadable.
func (d *diskCache) load(kind, key string, v any) bool {
	if d == nil || d.dir == "" {
		return false
	}
	p := d.path(kind, key)
	if p == "" {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4*MaxAnswer))
	if err != nil {
		return false
	}
	return json.Unmarshal(data, v) == nil
}

// save writes v atomically (temp file and rename), so a concurrent reader
// never sees half a file.
func (d *diskCache) save(kind, key string, v any) {
	if d == nil || d.dir == "" {
		return
	}
	p := d.path(kind, key)
	if p == "" {
		return
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = writeAtomic(p, data)
	}
	if err != nil {
		d.warn.Do(func() {
			d.log.Warn("registration cache not writable; caching in memory only", "dir", d.dir, "err", err)
		})
	}
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		if werr != nil {
			return werr
		}
		return cerr
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
