package checker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
)

// Report is a check run's output: stable JSON for scripts, a table for people.
type Report struct {
	Domains []DomainReport `json:"domains"`
	Summary Summary        `json:"summary"`
}

// DomainReport is one domain in a Report.
type DomainReport struct {
	Domain       string            `json:"domain"`
	Tier         int               `json:"tier"`
	Owner        string            `json:"owner,omitempty"`
	Status       string            `json:"status"` // ok, info, warning, critical, error
	Error        string            `json:"error,omitempty"`
	Findings     []finding.Finding `json:"findings"`
	DNS          any               `json:"dns,omitempty"`
	Registration any               `json:"registration,omitempty"`
	// registrationCached says the registration data came from the cache
	// and how old it is ("cached 3h12m ago"), for the table; the JSON
	// carries it in the record's cached and cache_age fields.
	registrationCached string
	registrationAt     time.Time
}

// Summary counts a Report.
type Summary struct {
	Total    int `json:"total"`
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	OK       int `json:"ok"`
	Errors   int `json:"errors"`
	// Accepted counts findings that are accepted risk (present when the
	// baseline was approved): shown, but not in Status or the exit code.
	Accepted   int     `json:"accepted"`
	Queries    int     `json:"dns_queries"`
	DurationMS float64 `json:"duration_ms"`
}

// NewReport summarises results.
func NewReport(results []Result, took time.Duration) *Report {
	rep := &Report{Domains: []DomainReport{}}
	for _, r := range results {
		rep.Domains = append(rep.Domains, rep.Summary.add(r))
	}
	rep.Summary.Total = len(results)
	rep.Summary.DurationMS = float64(took.Microseconds()) / 1000
	return rep
}

// add reports one domain and counts it (all but Total and DurationMS).
func (s *Summary) add(r Result) DomainReport {
	dr := DomainReport{Domain: r.Domain.Name, Tier: r.Domain.Tier, Owner: r.Domain.Owner, Findings: r.Findings}
	if dr.Findings == nil {
		dr.Findings = []finding.Finding{}
	}
	if r.DNS != nil {
		dr.DNS = r.DNS
		s.Queries += r.DNS.Queries
	}
	if r.Registration != nil {
		rec := *r.Registration
		rec.Raw = "" // bounded, but noise in a report
		dr.Registration = rec
		if rec.Cached {
			dr.registrationCached = "cached " + rec.CacheAge + " ago"
			dr.registrationAt = rec.FetchedAt
		}
	}
	worst := finding.OK
	for _, f := range r.Findings {
		if f.Accepted {
			s.Accepted++
		} else if f.Severity > worst {
			worst = f.Severity
		}
	}
	dr.Status = worst.String()
	if err := r.Err(); err != nil {
		dr.Error = err.Error()
		s.Errors++
		if worst < finding.Critical {
			dr.Status = "error"
		}
	}
	switch worst {
	case finding.Critical:
		s.Critical++
	case finding.Warning:
		s.Warning++
	default:
		if dr.Error == "" {
			s.OK++
		}
	}
	return dr
}

// WriteJSON writes the report as json.Encoder with a two-space indent
// would, byte for byte, one domain at a time: the whole report is never
// in memory as JSON (26 MB for 10,000 domains, and as much again for the
// indented copy).
func (r *Report) WriteJSON(w io.Writer) error {
	js := NewJSONStream(w, false)
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	for i := range r.Domains {
		b, err := e.domain(&r.Domains[i])
		if err != nil {
			return err
		}
		js.write(i, b)
	}
	return js.finish(r.Summary)
}

// JSONStream writes a report while the check runs: each domain's JSON is
// encoded by the goroutine that adds its result, and written in the order
// of the domains checked, so nothing but the domains finished out of order
// is held. The bytes are those of Report.WriteJSON for the same results.
type JSONStream struct {
	w       *bufio.Writer // nil: no JSON, the table alone
	mu      sync.Mutex
	next    int            // index of the next domain to write
	pending map[int][]byte // encoded domains waiting for an earlier one
	sum     Summary
	table   []indexedReport // with keepTable: the domains, without their DNS
	keep    bool
	err     error
}

type indexedReport struct {
	i  int
	dr DomainReport
}

// NewJSONStream starts a report on w. With keepTable it also keeps each
// domain's report, without its DNS observation, for Table. A nil w writes
// no JSON (nor encodes any): the summary and the table alone.
func NewJSONStream(w io.Writer, keepTable bool) *JSONStream {
	js := &JSONStream{pending: map[int][]byte{}, keep: keepTable}
	if w != nil {
		js.w = bufio.NewWriterSize(w, 64<<10)
	}
	return js
}

// Add reports r, the r.Index-th domain of the run. Safe for concurrent use;
// every index from 0 up must be added once.
func (js *JSONStream) Add(r Result) {
	var sum Summary
	dr := sum.add(r)
	var b []byte
	var err error
	if js.w != nil {
		e := encoders.Get().(*encoder)
		defer encoders.Put(e)
		b, err = e.domain(&dr)
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if err != nil && js.err == nil {
		js.err = err
	}
	js.sum.Critical += sum.Critical
	js.sum.Warning += sum.Warning
	js.sum.OK += sum.OK
	js.sum.Errors += sum.Errors
	js.sum.Accepted += sum.Accepted
	js.sum.Queries += sum.Queries
	js.sum.Total++
	if js.keep {
		dr.DNS = nil
		js.table = append(js.table, indexedReport{r.Index, dr})
	}
	if js.w != nil {
		js.write(r.Index, b)
	}
}

// write puts domain i's JSON in its place (js.mu held, or no concurrency):
// out now when it is the next domain, else a copy of b (which the caller
// reuses) waits for the domains before it.
func (js *JSONStream) write(i int, b []byte) {
	if i != js.next {
		js.pending[i] = bytes.Clone(b)
		return
	}
	js.pending[i] = b
	for {
		b, ok := js.pending[js.next]
		if !ok {
			return
		}
		delete(js.pending, js.next)
		if js.next == 0 {
			js.w.WriteString("{\n  \"domains\": [")
		} else {
			js.w.WriteByte(',')
		}
		js.w.WriteString("\n    ")
		if _, err := js.w.Write(b); err != nil && js.err == nil {
			js.err = err
		}
		js.next++
	}
}

// Close ends the report with its summary (took is the run's duration) and
// returns the summary.
func (js *JSONStream) Close(took time.Duration) (Summary, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.sum.DurationMS = float64(took.Microseconds()) / 1000
	if js.w == nil {
		return js.sum, nil
	}
	return js.sum, js.finish(js.sum)
}

// Report returns what a Report of the same results holds for the table:
// every domain, in order, without its DNS observation (NewJSONStream with
// keepTable), and the summary.
func (js *JSONStream) Report() *Report {
	js.mu.Lock()
	defer js.mu.Unlock()
	sort.Slice(js.table, func(a, b int) bool { return js.table[a].i < js.table[b].i })
	doms := make([]DomainReport, len(js.table))
	for i, t := range js.table {
		doms[i] = t.dr
	}
	return &Report{Domains: doms, Summary: js.sum}
}

func (js *JSONStream) finish(sum Summary) error {
	if js.err != nil {
		return js.err
	}
	if len(js.pending) > 0 {
		return fmt.Errorf("report: %d domains missing before domain %d", len(js.pending), js.next)
	}
	if js.next == 0 {
		js.w.WriteString("{\n  \"domains\": [")
	} else {
		js.w.WriteString("\n  ")
	}
	js.w.WriteString("],\n  \"summary\": ")
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	b, err := e.indented(&sum, "  ")
	if err != nil {
		return err
	}
	js.w.Write(b)
	js.w.WriteString("\n}\n")
	return js.w.Flush()
}

// domain is dr's JSON as an element of the report's domains.
func (e *encoder) domain(dr *DomainReport) ([]byte, error) {
	if b, ok := appendDomainJSON(e.out[:0], dr, "    "); ok {
		e.out = b
		return b, nil
	}
	return e.indented(dr, "    ")
}

// indented is json.MarshalIndent(v, prefix, "  ") into e's buffers (the
// result is valid until e's next use), with an indenter for the encoder's
// compact output that costs a fifth of json.Indent's (which validates as
// it goes: 70% of the time spent on JSON, before).
func (e *encoder) indented(v any, prefix string) ([]byte, error) {
	e.compact.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	// Encode ends with a newline, which Indent would keep.
	compact := bytes.TrimSuffix(e.compact.Bytes(), []byte("\n"))
	e.out = indentJSON(e.out[:0], compact, prefix)
	return e.out, nil
}

// indentJSON appends src, compact JSON as encoding/json writes it, to dst
// indented as json.Indent(dst, src, prefix, "  ") does: a newline, prefix
// and two spaces a level before each element and closing bracket, ": "
// after keys, empty objects and arrays kept as {} and [].
func indentJSON(dst, src []byte, prefix string) []byte {
	// A newline, the prefix and up to 32 levels, appended in one piece.
	nl := make([]byte, 0, 1+len(prefix)+64)
	nl = append(append(nl, '\n'), prefix...)
	for range 32 {
		nl = append(nl, ' ', ' ')
	}
	newline := func(depth int) {
		if depth <= 32 {
			dst = append(dst, nl[:1+len(prefix)+2*depth]...)
			return
		}
		dst = append(dst, nl...)
		for i := 32; i < depth; i++ {
			dst = append(dst, ' ', ' ')
		}
	}
	depth := 0
	needIndent := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if needIndent && c != '}' && c != ']' {
			needIndent = false
			depth++
			newline(depth)
		}
		switch c {
		case '{', '[':
			needIndent = true // delayed, so that {} and [] stay empty
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline(depth)
		case ':':
			dst = append(dst, c, ' ')
		case '}', ']':
			if needIndent {
				needIndent = false
			} else {
				depth--
				newline(depth)
			}
			dst = append(dst, c)
		case '"':
			// A string, copied whole: up to the quote no backslash escapes.
			j := i + 1
			for j < len(src) {
				if src[j] == '\\' {
					j += 2
					continue
				}
				if src[j] == '"' {
					break
				}
				j++
			}
			j = min(j+1, len(src))
			dst = append(dst, src[i:j]...)
			i = j - 1
		default:
			// A number or a literal, up to the next structural byte.
			j := i + 1
			for j < len(src) && !structural[src[j]] {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j - 1
		}
	}
	return dst
}

// structural marks the bytes that end a number or a literal.
var structural = func() (t [256]bool) {
	for _, c := range []byte(",:{}[]\" \t\n\r") {
		t[c] = true
	}
	return t
}()

type encoder struct {
	compact bytes.Buffer
	enc     *json.Encoder
	out     []byte
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.compact)
	return e
}}

// ExitCode follows the Nagios convention: critical beats everything; a domain that could not be checked
// is UNKNOWN (3) unless something is critical; then warning; then ok.
func (r *Report) ExitCode() int {
	switch {
	case r.Summary.Critical > 0:
		return 2
	case r.Summary.Errors > 0:
		return 3
	case r.Summary.Warning > 0:
		return 1
	}
	return 0
}

const (
	ansiRed    = "\x1b[31;1m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
	ansiReset  = "\x1b[0m"
)

func colourFor(status string) string {
	switch status {
	case "critical", "error":
		return ansiRed
	case "warning":
		return ansiYellow
	case "ok", "info":
		return ansiGreen
	}
	return ""
}

// writeTable prints one block per domain, worst domains first, the worst
// finding first inside each, one evidence line per finding (all with -v).
func (r *Report) WriteTable(w io.Writer, cfg *config.Config, verbose, colour bool) {
	paint := func(code, s string) string {
		if !colour || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	order := map[string]int{"critical": 0, "error": 1, "warning": 2, "info": 3, "ok": 4}
	doms := append([]DomainReport(nil), r.Domains...)
	sortStable(doms, func(a, b DomainReport) bool { return order[a.Status] < order[b.Status] })
	width := 0
	for _, d := range doms {
		width = max(width, len(d.Domain))
	}
	for _, d := range doms {
		head := fmt.Sprintf("%-*s  %s", width, d.Domain, paint(colourFor(d.Status), strings.ToUpper(d.Status)))
		meta := fmt.Sprintf("tier %d", d.Tier)
		if d.Owner != "" {
			meta += ", owner " + d.Owner
		}
		if pbs := cfg.PlaybooksFor(d.Domain); len(pbs) > 0 && d.Status == "critical" {
			meta += ", playbook " + pbs[0].Name
		}
		fmt.Fprintf(w, "%s  %s\n", head, paint(ansiDim, "("+meta+")"))
		if d.Error != "" {
			fmt.Fprintf(w, "    %s %s\n", paint(ansiRed, "ERROR"), d.Error)
		}
		if d.registrationCached != "" {
			fmt.Fprintf(w, "    %s\n", paint(ansiDim, fmt.Sprintf("registration data %s (fetched %s)",
				d.registrationCached, d.registrationAt.UTC().Format(time.RFC3339))))
		}
		for _, f := range d.Findings {
			sev := strings.ToUpper(f.Severity.String())
			id := f.ID
			if f.Subject != "" {
				id += " [" + f.Subject + "]"
			}
			colourSev := f.Severity.String()
			if f.Accepted {
				// Accepted risk: shown, dimmed, and said so.
				colourSev, id = "", id+" (accepted risk)"
			}
			fmt.Fprintf(w, "    %s %s  %s\n", paint(colourFor(colourSev), fmt.Sprintf("%-8s", sev)), id, f.Message)
			ev := f.Evidence
			if !verbose && len(ev) > 1 {
				ev = ev[:1]
			}
			for _, e := range ev {
				fmt.Fprintf(w, "             %s\n", paint(ansiDim, e.String()))
			}
			if !verbose && len(f.Evidence) > 1 {
				fmt.Fprintf(w, "             %s\n", paint(ansiDim, fmt.Sprintf("(+%d more evidence lines: -v)", len(f.Evidence)-1)))
			}
		}
	}
	s := r.Summary
	accepted := ""
	if s.Accepted > 0 {
		accepted = fmt.Sprintf(" (%d accepted %s not counted)", s.Accepted, plural(s.Accepted, "finding", "findings"))
	}
	fmt.Fprintf(w, "\n%d domains: %d critical, %d warning, %d ok, %d not checked%s — %d DNS queries in %.0f ms\n",
		s.Total, s.Critical, s.Warning, s.OK, s.Errors, accepted, s.Queries, s.DurationMS)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sortStable[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
