package audit

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nsguard/nsguard/finding"
)

// WriteDOT writes the dependency graph in Graphviz DOT: one node per
// registrable domain (inventory domains filled by their worst finding,
// undeclared ones dashed red), one edge per dependency kind between two
// domains with the records as its tooltip, backups dotted.
//
//	nsguard audit -o dot | dot -Tsvg -o dependencies.svg
func (r *Report) WriteDOT(w io.Writer) error {
	ew := &errWriter{w: w}
	p := ew.printf
	p("digraph nsguard_dependencies {\n")
	p("  graph [rankdir=LR, fontname=\"Helvetica\", labelloc=t, label=%s];\n",
		dotID("Dependencies of the critical-domain inventory ("+r.GeneratedAt.Format(time.DateOnly)+")"))
	p("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fillcolor=\"#ffffff\"];\n")
	p("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for _, n := range r.Graph.Nodes {
		var label string
		attrs := []string{}
		switch n.Kind {
		case NodeInventory:
			label = fmt.Sprintf("%s\ntier %d, %s", n.Name, n.Tier, dashMD(n.Owner))
			fill, border := severityColours(n.Worst)
			attrs = append(attrs, "fillcolor="+dotID(fill), "color="+dotID(border))
		case NodeUndeclared:
			label = n.Name + "\nnot in the inventory"
			attrs = append(attrs, `style="rounded,dashed"`, `color="#b02a37"`, `fontcolor="#b02a37"`)
		case NodeBackup:
			label = n.Name + "\nbackup, not in the inventory"
			attrs = append(attrs, `fillcolor="#e9ecef"`)
		default:
			label = n.Name
		}
		attrs = append([]string{"label=" + dotID(label)}, attrs...)
		p("  %s [%s];\n", dotID(n.Name), strings.Join(attrs, ", "))
	}
	for _, e := range r.Graph.Edges {
		attrs := []string{}
		switch e.Kind {
		case EdgeNS:
			attrs = append(attrs, `label="NS"`, `color="#495057"`)
		case EdgeCNAME:
			attrs = append(attrs, `label="CNAME"`, `color="#0d6efd"`, `fontcolor="#0d6efd"`)
		case EdgeMX:
			attrs = append(attrs, `label="MX"`, `color="#198754"`, `fontcolor="#198754"`)
		case EdgeBackup:
			attrs = append(attrs, `label="backup"`, `style=dotted`, `arrowhead=empty`)
		default:
			attrs = append(attrs, "label="+dotID(e.Kind))
		}
		if len(e.Records) > 0 {
			attrs = append(attrs, "tooltip="+dotID(strings.Join(e.Records, "\n")))
		}
		p("  %s -> %s [%s];\n", dotID(e.From), dotID(e.To), strings.Join(attrs, ", "))
	}
	p("}\n")
	return ew.err
}

func severityColours(s finding.Severity) (fill, border string) {
	switch s {
	case finding.Critical:
		return "#f8d7da", "#b02a37"
	case finding.Warning:
		return "#fff3cd", "#997404"
	}
	return "#d1e7dd", "#146c43"
}

// dotID quotes s as a DOT string: backslashes and quotes escaped, line
// breaks as DOT's \n, other control characters dropped.
func dotID(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
