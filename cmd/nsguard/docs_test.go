package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/finding"
)

// TestChecksDoc keeps docs/checks.md and the code naming the same checks:
// every registered ID has a section, every section is a registered ID, and
// the catalogue table is the code's (regenerate with NSGUARD_UPDATE_DOCS=1).
func TestChecksDoc(t *testing.T) {
	const path = "../../docs/checks.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var table strings.Builder
	table.WriteString("\n| ID | Class | Severity | What it means | Zonemaster |\n|---|---|---|---|---|\n")
	registered := map[string]bool{}
	for _, c := range finding.Catalogue() {
		registered[c.ID] = true
		fmt.Fprintf(&table, "| [`%s`](#%s) | %s | %s | %s | %s |\n", c.ID, strings.ToLower(c.ID), c.Class, c.Default, c.Title, c.Zonemaster)
	}
	const begin, end = "-->\n", "<!-- end catalogue -->"
	i := strings.Index(doc, "<!-- catalogue:")
	j := strings.Index(doc, end)
	if i < 0 || j < 0 {
		t.Fatal("catalogue markers missing")
	}
	i += strings.Index(doc[i:], begin) + len(begin)
	if got := doc[i:j]; got != table.String() {
		if os.Getenv("NSGUARD_UPDATE_DOCS") != "" {
			doc = doc[:i] + table.String() + doc[j:]
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("the catalogue table in docs/checks.md is stale: NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestChecksDoc")
		}
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### ([A-Z0-9_]+)\s*$`).FindAllStringSubmatch(doc, -1) {
		sections[m[1]] = true
		if !registered[m[1]] {
			t.Errorf("docs/checks.md documents %s, which no code registers", m[1])
		}
	}
	for id := range registered {
		if !sections[id] {
			t.Errorf("%s is registered but has no section in docs/checks.md", id)
		}
	}
}
