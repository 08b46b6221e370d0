package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Formats are the output formats Render knows.
var Formats = []string{"table", "json", "markdown", "dot"}

// Render writes the report in one of Formats ("md" is markdown).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "table", "text":
		return r.WriteTable(w)
	case "json":
		return r.WriteJSON(w)
	case "markdown", "md":
		return r.WriteMarkdown(w)
	case "dot":
		return r.WriteDOT(w)
	}
	return fmt.Errorf("unknown output %q (want %s)", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// errWriter keeps the first write error so renderers can write freely and
// check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// WriteTable writes the report for a terminal: the findings, then the
// independence matrix, shared domains, undeclared dependencies, the blast
// radius ranking and notes.
func (r *Report) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	s := r.Summary
	ew.printf("nsguard audit: %d domains, %d owners: %d critical, %d warning, %d info (%s)\n",
		s.Domains, s.Owners, s.Critical, s.Warning, s.Info, r.GeneratedAt.Format(time.RFC3339))
	table := func(title string, header string, rows [][]string) {
		if len(rows) == 0 {
			return
		}
		ew.printf("\n%s\n", title)
		tw := tabwriter.NewWriter(ew.w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil && ew.err == nil {
			ew.err = err
		}
	}
	owner := map[string]string{}
	for _, d := range r.Domains {
		owner[d.Name] = d.Owner
	}
	var rows [][]string
	for _, f := range r.Findings {
		rows = append(rows, []string{f.Severity.String(), f.ID, f.Domain, dash(owner[f.Domain]), dash(f.Subject), f.Message})
	}
	table("FINDINGS", "SEVERITY\tID\tDOMAIN\tOWNER\tSUBJECT\tMESSAGE", rows)

	rows = nil
	for _, b := range r.Backups {
		row := []string{b.Primary, fmt.Sprint(b.PrimaryTier), b.Backup}
		for _, dim := range Dimensions {
			row = append(row, cellWord(b.Cell(dim).Status))
		}
		health := "ok"
		if len(b.Health) > 0 {
			health = strings.Join(b.Health, "; ")
		}
		row = append(row, b.Verdict, health)
		rows = append(rows, row)
	}
	table("BACKUP INDEPENDENCE (primary × backup)",
		"PRIMARY\tTIER\tBACKUP\tREGISTRAR\tDNS PROVIDER\tNS NETWORK\tTLD\tREGISTRANT\tVERDICT\tHEALTH", rows)

	rows = nil
	for _, sd := range r.Shared {
		rows = append(rows, []string{sd.Domain, fmt.Sprint(sd.Tier), dash(sd.Owner),
			fmt.Sprintf("%d/%d", len(sd.Services), sd.Limit), fmt.Sprint(sd.BlastRadius), splitShort(sd.Split)})
	}
	table("SHARED DOMAINS (largest blast radius first)", "DOMAIN\tTIER\tOWNER\tSERVICES\tRADIUS\tSUGGESTED SPLIT", rows)

	rows = nil
	for _, u := range r.Undeclared {
		for _, d := range u.Dependents {
			rows = append(rows, []string{u.Domain, d.Domain, strings.Join(d.Paths, "; ")})
		}
	}
	table("UNDECLARED DEPENDENCIES", "DOMAIN\tDEPENDED ON BY\tVIA", rows)

	rows = nil
	for i, d := range r.Domains {
		if i == 10 {
			break
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), d.Name, fmt.Sprint(d.Tier), dash(d.Owner),
			fmt.Sprint(len(d.Services)), fmt.Sprint(d.BlastRadius), d.Worst.String()})
	}
	table("BLAST RADIUS (top 10)", "#\tDOMAIN\tTIER\tOWNER\tSERVICES\tRADIUS\tWORST", rows)

	if len(r.Notes) > 0 {
		ew.printf("\nNOTES\n")
		for _, n := range r.Notes {
			ew.printf("  %s\n", n)
		}
	}
	return ew.err
}

func cellWord(status string) string {
	switch status {
	case CellShared:
		return "SHARED"
	case CellUnknown:
		return "?"
	}
	return "ok"
}

func splitShort(s Split) string {
	parts := []string{"keep " + strings.Join(s.Keep, ",")}
	for _, m := range s.Move {
		parts = append(parts, "new: "+strings.Join(m, ","))
	}
	return strings.Join(parts, " | ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
