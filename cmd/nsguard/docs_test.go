package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// TestDocTranscripts replays the terminal transcripts of README.md and
// docs/*.md that this binary can replay alone — blocks of "$ cat FILE"
// (the lines after it are written to FILE) and "$ nsguard …" (the lines
// after it are what it prints) — in an empty directory, and requires the
// same output, so an example cannot drift from the program.
// NSGUARD_UPDATE_DOCS=1 rewrites the outputs from what the program prints.
func TestDocTranscripts(t *testing.T) {
	docs, _ := filepath.Glob("../../docs/*.md")
	docs = append([]string{"../../README.md"}, docs...)
	replayed := map[string]int{}
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		updated := doc
		for _, blk := range transcriptBlocks(doc) {
			var got string
			t.Run(filepath.Base(path), func(t *testing.T) { got = replay(t, blk) })
			if got == blk.text {
				replayed[path]++
				continue
			}
			if os.Getenv("NSGUARD_UPDATE_DOCS") != "" {
				updated = strings.Replace(updated, blk.text, got, 1)
				replayed[path]++
				continue
			}
			t.Errorf("%s: the example does not match what nsguard prints (NSGUARD_UPDATE_DOCS=1 go test ./cmd/nsguard -run TestDocTranscripts):\n--- doc\n%s--- nsguard\n%s", path, blk.text, got)
		}
		if updated != doc {
			if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if replayed["../../README.md"] == 0 {
		t.Error("README.md has no replayable transcript: the config check example is gone?")
	}
}

type transcript struct {
	text string // the block's lines, fences excluded
	cmds []transcriptCmd
}

type transcriptCmd struct {
	line string   // "$ nsguard config check bad.yaml"
	args []string // after the "$ "
	body string   // the lines after it
}

// transcriptBlocks finds the fenced blocks made only of "$ cat" and
// "$ nsguard config" commands.
func transcriptBlocks(doc string) []transcript {
	var out []transcript
	lines := strings.SplitAfter(doc, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
			j++
		}
		body := lines[i+1 : min(j, len(lines))]
		i = j
		if len(body) == 0 || !strings.HasPrefix(body[0], "$ ") {
			continue
		}
		tr := transcript{text: strings.Join(body, "")}
		ok := true
		for _, l := range body {
			if strings.HasPrefix(l, "$ ") {
				args := strings.Fields(strings.TrimPrefix(l, "$ "))
				switch {
				case len(args) == 2 && args[0] == "cat":
				case len(args) >= 2 && args[0] == "nsguard" && args[1] == "config":
				default:
					ok = false
				}
				tr.cmds = append(tr.cmds, transcriptCmd{line: l, args: args})
				continue
			}
			tr.cmds[len(tr.cmds)-1].body += l
		}
		if ok {
			out = append(out, tr)
		}
	}
	return out
}

// replay runs a transcript in an empty directory and returns it as the
// program would print it.
func replay(t *testing.T, tr transcript) string {
	t.Helper()
	t.Chdir(t.TempDir())
	t.Setenv("NSGUARD_CONFIG", "")
	var b strings.Builder
	for _, c := range tr.cmds {
		b.WriteString(c.line)
		if c.args[0] == "cat" {
			if err := os.WriteFile(c.args[1], []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			b.WriteString(c.body)
			continue
		}
		var out, errb bytes.Buffer
		run(context.Background(), c.args[1:], strings.NewReader(""), &out, &errb)
		b.WriteString(out.String() + errb.String())
	}
	return b.String()
}
