package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// filled opens a store with enough rows to span many pages.
func filled(t *testing.T) (*SQLite, string) {
	t.Helper()
	s, path := openTemp(t)
	ctx := context.Background()
	for i := range 400 {
		data := json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 400)))
		if _, err := s.PutObservation(ctx, Observation{Domain: fmt.Sprintf("d%03d.example", i), Class: "dns", ObservedAt: t0, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	return s, path
}

// corrupt writes random bytes into the middle of the file, as a failing
// disk or a stray dd would.
func corrupt(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	junk := make([]byte, 8192)
	rand.Read(junk)
	if _, err := f.WriteAt(junk, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFindsCorruption(t *testing.T) {
	ctx := context.Background()
	s, path := filled(t)
	if res, err := s.Check(ctx, false); err != nil || !res.OK() {
		t.Fatalf("a sound store: %+v, %v", res, err)
	}
	s.Close()
	corrupt(t, path)
	res, err := CheckFile(ctx, path, false)
	if err != nil || res.OK() {
		t.Fatalf("quick_check of a damaged file: %+v, %v", res, err)
	}
	t.Logf("quick_check: %d problem(s), first: %s", len(res.Problems), res.Problems[0])
	if _, err := os.Stat(path + ".replaced"); err == nil {
		t.Fatal("checking changed the directory")
	}
}

func TestOpenRefusesNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nsguard.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not SQLite ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{BusyTimeout: time.Second})
	if !errors.Is(err, ErrCorrupt) || Classify(err) != FaultCorrupt || !strings.Contains(err.Error(), path) {
		t.Fatalf("open of a non-database: %v", err)
	}
}

// An online backup taken while the store is being written is a sound,
// consistent copy; restoring it brings the data back; a restore refuses
// while the store is open, and keeps the file it replaces.
func TestBackupAndRestore(t *testing.T) {
	ctx := context.Background()
	s, path := filled(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a daemon writing meanwhile
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Heartbeat(ctx, "daemon", t0.Add(time.Duration(i)*time.Second), "test"); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dst := filepath.Join(t.TempDir(), "backup.db")
	stats, err := s.Backup(ctx, dst)
	close(stop)
	wg.Wait()
	if err != nil || stats.Pages == 0 || stats.Bytes == 0 {
		t.Fatalf("backup = %+v, %v", stats, err)
	}
	if _, err := s.Backup(ctx, dst); err == nil {
		t.Fatal("a backup overwrote an existing file")
	}
	if res, err := CheckFile(ctx, dst, true); err != nil || !res.OK() {
		t.Fatalf("the backup is not sound: %+v, %v", res, err)
	}
	if _, err := Restore(ctx, dst, path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("restore under a running store: %v", err)
	}
	s.Close()
	corrupt(t, path)
	kept, err := Restore(ctx, dst, path)
	if err != nil || kept == "" {
		t.Fatalf("restore = %q, %v", kept, err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("the replaced file was not kept: %v", err)
	}
	back, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	obs, err := back.LatestObservations(ctx, "dns")
	if err != nil || len(obs) != 400 {
		t.Fatalf("restored store has %d observations, %v", len(obs), err)
	}
	if res, err := back.Check(ctx, true); err != nil || !res.OK() {
		t.Fatalf("restored store: %+v, %v", res, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := copyFile(kept, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, bad, path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restoring a damaged backup: %v", err)
	}
}
