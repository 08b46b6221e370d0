package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// silenceTestConfig writes a config whose store is a temp file.
func silenceTestConfig(t *testing.T) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "nsguard.db")
	cfgPath = filepath.Join(dir, "nsguard.yaml")
	cfg := "store: {path: " + dbPath + "}\n" +
		"domains:\n" +
		"  - {name: shop-example.com, tier: 0, owner: shop}\n" +
		"  - {name: api-example.net, tier: 1, owner: api}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

func runSilence(t *testing.T, cfg string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSilenceLifecycle(t *testing.T) {
	cfg, db := silenceTestConfig(t)

	code, out, errOut := runSilence(t, cfg, "silence", "add", "Shop-Example.com.", "--for", "2h", "--reason", "registrar migration CHG-1", "--by", "ann")
	if code != 0 || !strings.Contains(out, "silence 1: shop-example.com silenced until") || !strings.Contains(out, "by ann: registrar migration CHG-1") {
		t.Fatalf("add: code %d, out %q, err %q", code, out, errOut)
	}
	code, out, _ = runSilence(t, cfg, "silence", "add", "*", "--for", "30m", "--reason", "resolver maintenance", "--by", "bob")
	if code != 0 || !strings.Contains(out, "silence 2: * silenced") {
		t.Fatalf("add *: code %d, out %q", code, out)
	}

	code, out, _ = runSilence(t, cfg, "silence", "list")
	if code != 0 || !strings.Contains(out, "shop-example.com") || !strings.Contains(out, "active") || !strings.Contains(out, "resolver maintenance") {
		t.Fatalf("list: code %d, out:\n%s", code, out)
	}

	code, out, _ = runSilence(t, cfg, "silence", "expire", "1")
	if code != 0 || !strings.Contains(out, "silence 1 expired") {
		t.Fatalf("expire: code %d, out %q", code, out)
	}
	code, _, errOut = runSilence(t, cfg, "silence", "expire", "1")
	if code != exitUsage || !strings.Contains(errOut, "already ended") {
		t.Fatalf("expire twice: code %d, err %q", code, errOut)
	}

	code, out, _ = runSilence(t, cfg, "silence", "list", "-o", "json")
	var active []silenceJSON
	if code != 0 || json.Unmarshal([]byte(out), &active) != nil || len(active) != 1 || active[0].Domain != "*" || active[0].State != "active" {
		t.Fatalf("list -o json: code %d, out %s", code, out)
	}
	code, out, _ = runSilence(t, cfg, "silence", "list", "-o", "json", "--all")
	var all []silenceJSON
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || len(all) != 2 || all[1].State != "expired" || all[1].ExpiredAt == nil || all[1].CreatedBy != "ann" {
		t.Fatalf("list --all: code %d, out %s", code, out)
	}

	// The daemon sees what the CLI wrote: same file, same store.
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ss, err := st.Silences(context.Background(), store.SilenceFilter{ActiveAt: time.Now(), Domain: "shop-example.com"})
	if err != nil || len(ss) != 1 || ss[0].Domain != "*" {
		t.Fatalf("store sees %+v, %v", ss, err)
	}
}

func TestSilenceErrors(t *testing.T) {
	cfg, _ := silenceTestConfig(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no duration", []string{"silence", "add", "shop-example.com", "--reason", "x"}, "--for is required"},
		{"bad duration", []string{"silence", "add", "shop-example.com", "--for", "soon", "--reason", "x"}, "invalid duration"},
		{"too long", []string{"silence", "add", "shop-example.com", "--for", "90d", "--reason", "x"}, "between 1s and 30d"},
		{"no reason", []string{"silence", "add", "shop-example.com", "--for", "2h"}, "--reason is required"},
		{"blank reason", []string{"silence", "add", "shop-example.com", "--for", "2h", "--reason", "  "}, "--reason is required"},
		{"not in inventory", []string{"silence", "add", "other.org", "--for", "2h", "--reason", "x"}, "not in the inventory"},
		{"bad domain", []string{"silence", "add", "bad_.com..", "--for", "2h", "--reason", "x"}, "invalid domain"},
		{"bad output", []string{"silence", "list", "-o", "yaml"}, "-o must be"},
		{"unknown id", []string{"silence", "expire", "42"}, "no silence 42"},
		{"bad id", []string{"silence", "expire", "abc"}, "positive number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runSilence(t, cfg, tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("code %d, stderr %q; want exit 3 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestSilenceListEmpty(t *testing.T) {
	cfg, _ := silenceTestConfig(t)
	code, out, _ := runSilence(t, cfg, "silence", "list")
	if code != 0 || strings.TrimSpace(out) != "no silences" {
		t.Fatalf("code %d out %q", code, out)
	}
	code, out, _ = runSilence(t, cfg, "silence", "list", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("json: code %d out %q", code, out)
	}
}
