package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/store"
)

// The operator's path through a damaged store: check says so, a backup
// taken earlier is restored, check is happy again and the data is back.
func TestStoreCheckBackupRestore(t *testing.T) {
	_, cfgPath := startEnv(t, "")
	if code, out, stderr := runCLI(t, "baseline", "approve", "--reason", "initial", "--config", cfgPath); code != 0 {
		t.Fatalf("approve: exit %d\n%s\n%s", code, out, stderr)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), cfg.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // pages enough that damage lands in data
		if err := st.Heartbeat(context.Background(), strings.Repeat("w", 200)+string(rune('a'+i%26))+strings.Repeat("x", i), time.Now(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	code, out, stderr := runCLI(t, "store", "check", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "integrity   quick_check ok") || !strings.Contains(out, "schema      version") {
		t.Fatalf("check of a sound store: exit %d\n%s\n%s", code, out, stderr)
	}
	backup := filepath.Join(t.TempDir(), "nsguard-backup.db")
	code, out, stderr = runCLI(t, "store", "backup", backup, "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "quick_check ok") {
		t.Fatalf("backup: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, stderr = runCLI(t, "store", "backup", backup, "--config", cfgPath); code != 3 || !strings.Contains(stderr, "exists") {
		t.Errorf("a backup over an existing file: exit %d, %s", code, stderr)
	}

	f, err := os.OpenFile(cfg.Store.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, fi.Size()/2)
	rand.Read(junk)
	f.WriteAt(junk, fi.Size()/4)
	f.Close()
	code, out, _ = runCLI(t, "store", "check", "--config", cfgPath, "-o", "json")
	var res storeCheckJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 2 || res.OK || len(res.Problems) == 0 {
		t.Fatalf("check of a damaged store: exit %d, %v\n%s", code, err, out)
	}
	if code, _, stderr = runCLI(t, "store", "restore", backup, "--config", cfgPath); code != 3 || !strings.Contains(stderr, "--yes") {
		t.Errorf("restore without confirmation: exit %d, %s", code, stderr)
	}
	code, out, stderr = runCLI(t, "store", "restore", backup, "--yes", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "the replaced file is kept as") {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, _ = runCLI(t, "store", "check", "--full", "--config", cfgPath); code != 0 || !strings.Contains(out, "integrity_check ok") {
		t.Fatalf("check after restore: exit %d\n%s", code, out)
	}
	if code, out, _ = runCLI(t, "baseline", "show", "shop-example.com", "--config", cfgPath); code != 0 || !strings.Contains(out, "version 1") {
		t.Fatalf("the restored store lost the baselines: exit %d\n%s", code, out)
	}
}
