package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Fault names why a store cannot do its job, for the operator and the
// daemon's health.
type Fault string

const (
	FaultNone Fault = ""
	// FaultFull: the file system is full (SQLITE_FULL, ENOSPC).
	FaultFull Fault = "disk full"
	// FaultReadOnly: the file or its directory cannot be written.
	FaultReadOnly Fault = "read-only"
	// FaultCorrupt: the file is damaged or not a database.
	FaultCorrupt Fault = "corrupt"
	// FaultBusy: another process holds a lock for too long.
	FaultBusy Fault = "locked"
	// FaultOther: any other error.
	FaultOther Fault = "error"
)

// ErrCorrupt wraps errors opening or checking a store whose file is
// damaged.
var ErrCorrupt = errors.New("the store is corrupt")

// Classify names the fault behind a store error.
func Classify(err error) Fault {
	if err == nil {
		return FaultNone
	}
	if errors.Is(err, ErrCorrupt) {
		return FaultCorrupt
	}
	if errors.Is(err, ErrBusy) {
		return FaultBusy
	}
	// PostgreSQL says what is wrong by SQLSTATE.
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return FaultFull
		case pe.Code == "25006": // read_only_sql_transaction: a standby, or default_transaction_read_only
			return FaultReadOnly
		case pe.Code == "XX001", pe.Code == "XX002": // data_corrupted, index_corrupted
			return FaultCorrupt
		case pe.Code == "55P03", pe.Code == "40P01", pe.Code == "40001":
			return FaultBusy
		}
		return FaultOther
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL:
			return FaultFull
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
			return FaultReadOnly
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return FaultCorrupt
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return FaultBusy
		case sqlite3.SQLITE_IOERR:
			// An I/O error writing is a full or failing disk more often than
			// not; the message keeps SQLite's own words.
			if strings.Contains(se.Error(), "full") {
				return FaultFull
			}
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "disk is full") || strings.Contains(msg, "no space left"):
		return FaultFull
	case strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only"):
		return FaultReadOnly
	case strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database"):
		return FaultCorrupt
	}
	return FaultOther
}

// CheckResult is what an integrity check found.
type CheckResult struct {
	// Problems are SQLite's own lines; none means the file is sound.
	Problems []string
	// Full is true for integrity_check, false for quick_check.
	Full bool
	Took time.Duration
}

// OK reports whether the check found nothing wrong.
func (c CheckResult) OK() bool { return len(c.Problems) == 0 }

// maxCheckProblems bounds what a check reports: a badly damaged file can
// list a problem for every page.
const maxCheckProblems = 100

// Check runs PRAGMA quick_check (full: integrity_check) on the file: a
// damaged store must never run blind. quick_check reads every page but
// skips the index-content comparison, so it costs about one full read.
func (s *SQLite) Check(ctx context.Context, full bool) (CheckResult, error) {
	return check(ctx, s.r, s.path, full)
}

// CheckFile checks the SQLite file at path without opening it as a store:
// read-only, no migration, so it works on a file Open refuses and never
// changes a backup.
func CheckFile(ctx context.Context, path string, full bool) (CheckResult, error) {
	if _, err := os.Stat(path); err != nil {
		return CheckResult{}, fmt.Errorf("store: check: %w", err)
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=query_only(1)"}).String())
	if err != nil {
		return CheckResult{}, fmt.Errorf("store: check %s: %w", path, err)
	}
	defer db.Close()
	return check(ctx, db, path, full)
}

func check(ctx context.Context, db *sql.DB, path string, full bool) (CheckResult, error) {
	start := time.Now()
	pragma := fmt.Sprintf("PRAGMA quick_check(%d)", maxCheckProblems)
	if full {
		pragma = fmt.Sprintf("PRAGMA integrity_check(%d)", maxCheckProblems)
	}
	res := CheckResult{Full: full}
	rows, err := db.QueryContext(ctx, pragma)
	if err != nil {
		if Classify(err) == FaultCorrupt {
			res.Problems, res.Took = []string{err.Error()}, time.Since(start)
			return res, nil
		}
		return res, fmt.Errorf("store: check %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return res, fmt.Errorf("store: check %s: %w", path, err)
		}
		if line != "ok" {
			res.Problems = append(res.Problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if Classify(err) == FaultCorrupt {
			res.Problems = append(res.Problems, err.Error())
		} else {
			return res, fmt.Errorf("store: check %s: %w", path, err)
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// backuper is what modernc.org/sqlite's connection offers for SQLite's
// online backup API.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// BackupStats says what a backup copied.
type BackupStats struct {
	Pages int
	Bytes int64
	Took  time.Duration
}

// Backup copies the live store to dst with SQLite's online backup API, a
// few hundred pages at a time, so the daemon keeps writing meanwhile; the
// copy is a consistent snapshot. dst must not exist: a backup never
// overwrites one.
func (s *SQLite) Backup(ctx context.Context, dst string) (BackupStats, error) {
	start := time.Now()
	if _, err := os.Stat(dst); err == nil {
		return BackupStats{}, fmt.Errorf("store: backup: %s exists; choose a new file", dst)
	}
	tmp := dst + ".partial"
	_ = os.Remove(tmp)
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return BackupStats{}, fmt.Errorf("store: backup: %w", err)
	}
	defer conn.Close()
	var stats BackupStats
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return errors.New("the SQLite driver offers no backup API")
		}
		bk, err := b.NewBackup((&url.URL{Scheme: "file", Path: tmp}).String())
		if err != nil {
			return err
		}
		for {
			more, err := bk.Step(256)
			if err != nil {
				bk.Finish()
				return err
			}
			if !more {
				break
			}
			select {
			case <-ctx.Done():
				bk.Finish()
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		stats.Pages = bk.PageCount()
		return bk.Finish()
	})
	if err != nil {
		_ = os.Remove(tmp)
		return BackupStats{}, fmt.Errorf("store: backup %s to %s: %w", s.path, dst, err)
	}
	if err := syncFile(tmp); err != nil {
		return BackupStats{}, fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return BackupStats{}, fmt.Errorf("store: backup: %w", err)
	}
	if fi, err := os.Stat(dst); err == nil {
		stats.Bytes = fi.Size()
	}
	stats.Took = time.Since(start)
	return stats, nil
}

// Restore replaces the store file at path with the backup at from, after
// checking the backup is sound. It refuses while another process has the
// store open (stop the daemon first): restoring under a running writer
// would lose its writes or damage the file. The file replaced is kept as
// path + ".replaced-TIMESTAMP", never deleted.
func Restore(ctx context.Context, from, path string) (kept string, err error) {
	res, err := CheckFile(ctx, from, true)
	if err != nil {
		return "", fmt.Errorf("store: restore: %w", err)
	}
	if !res.OK() {
		return "", fmt.Errorf("store: restore: the backup %s is damaged too (%s): choose an older one", from, strings.Join(res.Problems, "; "))
	}
	if _, err := os.Stat(path); err == nil {
		if err := exclusive(ctx, path); err != nil {
			return "", err
		}
		kept = fmt.Sprintf("%s.replaced-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(path, kept); err != nil {
			return "", fmt.Errorf("store: restore: moving the current file aside: %w", err)
		}
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + side); err == nil {
			if kept != "" {
				_ = os.Rename(path+side, kept+side)
			} else {
				_ = os.Remove(path + side)
			}
		}
	}
	tmp := path + ".restoring"
	if err := copyFile(from, tmp); err != nil {
		return kept, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return kept, fmt.Errorf("store: restore: %w", err)
	}
	return kept, nil
}

// exclusive fails when another process has the SQLite file open (a
// running daemon). In WAL mode a write lock would not see idle
// connections; leaving WAL mode needs every other connection gone, so that
// is the test (the file is about to be replaced anyway).
func exclusive(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer db.Close()
	var mode string
	err = db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode)
	if err == nil && mode != "delete" {
		err = fmt.Errorf("journal mode stays %s", mode)
	}
	switch f := Classify(err); {
	case err == nil, f == FaultCorrupt:
		// A damaged file cannot change modes cleanly; it is what is being
		// replaced, so go on.
		return nil
	case f == FaultBusy, strings.Contains(err.Error(), "journal mode stays"):
		return fmt.Errorf("store: restore: %s is in use (is the daemon running? stop it first)", path)
	default:
		return fmt.Errorf("store: restore: %w", err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(to)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
