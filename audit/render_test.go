package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/registry"
)

func TestRegistrant(t *testing.T) {
	// Parsing the registrant out of RDAP and WHOIS answers is the registry
	// client's (registry/registrant_test.go); the audit reads the field.
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"set by the caller", Input{Registrant: "Given Ltd", Registration: &registry.Record{Registrant: "Other Ltd"}}, "Given Ltd"},
		{"no record", Input{}, ""},
		{"from the record", Input{Registration: &registry.Record{Source: registry.SourceRDAP, Registrant: "Example Shop Ltd"}}, "Example Shop Ltd"},
		{"redacted or unpublished", Input{Registration: &registry.Record{Source: registry.SourceWHOIS}}, ""},
		{"raw answers are not read any more", Input{Registration: &registry.Record{Source: registry.SourceWHOIS,
			Raw: "Registrant Organization: Example Group plc\n"}}, ""},
	}
	for _, tc := range tests {
		if got := Registrant(tc.in); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if !sameEntity("Example Shop Ltd", "EXAMPLE SHOP LIMITED") || sameEntity("Example Shop Ltd", "Example Shop Continuity Ltd") || sameEntity("", "") {
		t.Error("sameEntity compares legal names wrongly")
	}
}

// A report whose free text carries Markdown and DOT metacharacters.
func awkwardReport() *Report {
	p, b := pair()
	p.Domain.Owner = `web|"ops"`
	p.Domain.Services = []string{"a|b", "c", "d", "e"}
	b.Registrant = "Shop Ltd" // shared: a finding with a message
	p.Edges = []Edge{{From: "shop.com", To: `q"uote.io`, Kind: EdgeCNAME, Record: "www.shop.com CNAME x.q\"uote.io\nnext", Depth: 1}}
	cfg := testConfig(p.Domain, b.Domain)
	cfg.Policy.ApprovedRegistrars = []string{"Pipe | Registrar"}
	return Analyze(cfg, []Input{p, b}, now)
}

func TestMarkdownEscapes(t *testing.T) {
	var buf bytes.Buffer
	if err := awkwardReport().WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") {
			continue
		}
		n := strings.Count(strings.ReplaceAll(lines[i], `\|`, ""), "|")
		for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			if c := strings.Count(strings.ReplaceAll(lines[i], `\|`, ""), "|"); c != n {
				t.Errorf("line %d has %d pipes, its table %d: %q", i+1, c, n, lines[i])
			}
		}
	}
	if !strings.Contains(md, `web\|"ops"`) {
		t.Errorf("owner not escaped in tables:\n%s", md)
	}
}

func TestDOTEscapes(t *testing.T) {
	var buf bytes.Buffer
	if err := awkwardReport().WriteDOT(&buf); err != nil {
		t.Fatal(err)
	}
	dot := buf.String()
	for _, want := range []string{`"q\"uote.io"`, `tooltip="www.shop.com CNAME x.q\"uote.io\nnext"`, `tier 0, web|\"ops\"`} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
	if strings.Count(dot, "{") != 1 || strings.Count(dot, "}") != 1 || !strings.HasSuffix(dot, "}\n") {
		t.Errorf("not one closed graph:\n%s", dot)
	}
}

func TestRenderFormats(t *testing.T) {
	r := awkwardReport()
	for _, f := range append(Formats, "md", "text") {
		var buf bytes.Buffer
		if err := Render(&buf, r, f); err != nil || buf.Len() == 0 {
			t.Errorf("%s: %v (%d bytes)", f, err, buf.Len())
		}
	}
	if err := Render(&bytes.Buffer{}, r, "xml"); err == nil || !strings.Contains(err.Error(), "table, json, markdown, dot") {
		t.Errorf("unknown format: %v", err)
	}
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if len(back.Findings) != len(r.Findings) || back.Summary.Worst != r.Summary.Worst || back.Policy.ExpiryWarning != "90d" {
		t.Errorf("JSON round trip lost data: %+v", back.Summary)
	}
}

func TestEmptyInventory(t *testing.T) {
	r := Analyze(config.Default(), nil, now)
	if r.ExitCode() != 0 || len(r.Findings) != 0 {
		t.Fatalf("empty inventory: exit %d, %v", r.ExitCode(), r.Findings)
	}
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil || !strings.Contains(buf.String(), "Every domain is within policy") {
		t.Errorf("markdown: %v\n%s", err, buf.String())
	}
	var js bytes.Buffer
	r.WriteJSON(&js)
	if strings.Contains(js.String(), "null") {
		t.Errorf("empty lists marshal as null:\n%s", js.String())
	}
	d := r.Digest()
	if d.Title() != "Domain inventory audit: all 0 domains within policy" || len(d.Risks) != 0 || strings.Contains(d.Markdown(), "largest risks") {
		t.Errorf("digest %q\n%s", d.Title(), d.Markdown())
	}
}

func TestDigest(t *testing.T) {
	r := awkwardReport()
	d := r.Digest()
	if d.Critical != r.Summary.Critical || len(d.Risks) != min(DigestRisks, len(r.Risks)) || len(d.Findings()) != len(d.Risks) {
		t.Fatalf("digest %+v", d)
	}
	if md := d.Markdown(); !strings.Contains(md, "## Findings") || !strings.Contains(md, "1. **CRITICAL** shop.com") {
		t.Errorf("digest body:\n%s", md)
	}
	d.Risks[0].Domain = "changed"
	if r.Risks[0].Domain == "changed" {
		t.Error("the digest shares the report's risks")
	}
}

// Accepted risk is never paged, so the daily digest says it.
func TestDigestListsAcceptedRisk(t *testing.T) {
	r := awkwardReport()
	if md := r.Digest().Markdown(); strings.Contains(md, "Accepted risk") {
		t.Fatalf("no accepted finding, yet:\n%s", md)
	}
	accepted := 0
	for i := range r.Findings {
		if r.Findings[i].Severity == finding.Warning {
			r.Findings[i].Accepted = true
			accepted++
		}
	}
	d := r.Digest()
	total := 0
	for _, c := range d.Accepted {
		total += c.Findings
	}
	if accepted == 0 || total != accepted || !strings.Contains(d.Markdown(), "## Accepted risk (approved with the baseline, never paged)") {
		t.Fatalf("%d accepted, digest counts %d:\n%s", accepted, total, d.Markdown())
	}
}
