package deploy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// exportedMetrics are the series the daemon exports (the contract in issue
// 7; the daemon's metrics.go must keep these names). Alert rules and the
// dashboard may query only these, the histogram's derived series, the
// standard go_* and process_* collectors, and Prometheus's own up.
var exportedMetrics = map[string]bool{
	"nsguard_cycle_duration_seconds_bucket":         true,
	"nsguard_cycle_duration_seconds_sum":            true,
	"nsguard_cycle_duration_seconds_count":          true,
	"nsguard_cycles_total":                          true,
	"nsguard_dns_queries_total":                     true,
	"nsguard_findings":                              true,
	"nsguard_domain_last_success_timestamp_seconds": true,
	"nsguard_outbox_depth":                          true,
	"nsguard_outbox_delivery_failures_total":        true,
	"nsguard_incidents_open":                        true,
	"nsguard_build_info":                            true,
	"nsguard_up":                                    true,
	"nsguard_leader":                                true,
	"nsguard_leader_epoch":                          true,
	"nsguard_vantage_verdicts_total":                true,
	"up":                                            true,
}

// standardCollectors are the client_golang Go and process collectors'
// series that the dashboard uses (a typo in one is still an error).
var standardCollectors = map[string]bool{
	"go_goroutines":                 true,
	"go_memstats_heap_alloc_bytes":  true,
	"go_gc_duration_seconds":        true,
	"go_threads":                    true,
	"process_cpu_seconds_total":     true,
	"process_resident_memory_bytes": true,
	"process_open_fds":              true,
	"process_max_fds":               true,
	"process_start_time_seconds":    true,
}

// identRe finds identifiers in PromQL. Strings are removed first so that
// label values are not mistaken for metric names.
var (
	identRe  = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	stringRe = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	// labelCtx matches an identifier used as a label name (inside by(),
	// without(), on(), ignoring(), group_left() or a matcher).
	braceRe = regexp.MustCompile(`\{[^{}]*\}`)
	groupRe = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
)

// promqlMetrics returns the metric names an expression selects. It is not
// a PromQL parser (github.com/prometheus/prometheus would bring 250
// modules and newer x/net, x/crypto for everyone): it strips strings,
// label matchers and grouping clauses, then keeps identifiers that look
// like series (contain '_' or are "up"). Functions are followed by '(',
// which it also uses to drop them.
func promqlMetrics(expr string) ([]string, error) {
	if err := balanced(expr); err != nil {
		return nil, err
	}
	e := stringRe.ReplaceAllString(expr, `""`)
	e = braceRe.ReplaceAllString(e, " ")
	e = groupRe.ReplaceAllString(e, " ")
	// Range and offset durations: [5m], [$__rate_interval].
	e = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(e, " ")
	seen := map[string]bool{}
	for _, loc := range identRe.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") {
			continue // a function call
		}
		if loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] == '.') {
			continue // a Grafana variable or a number's tail
		}
		switch id {
		case "and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN":
			continue
		}
		if id == "up" || strings.Contains(id, "_") {
			seen[id] = true
		}
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

// unknownMetrics returns the names in expr that nsguard does not export.
func unknownMetrics(expr string) ([]string, error) {
	names, err := promqlMetrics(expr)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no metric found in %q", expr)
	}
	var bad []string
	for _, n := range names {
		if !exportedMetrics[n] && !standardCollectors[n] {
			bad = append(bad, n)
		}
	}
	return bad, nil
}

func balanced(s string) error {
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var stack []rune
	inStr := rune(0)
	for i, r := range s {
		switch {
		case inStr != 0:
			if r == inStr && (i == 0 || s[i-1] != '\\') {
				inStr = 0
			}
		case r == '"' || r == '\'':
			inStr = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q at offset %d in %q", r, i, s)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inStr != 0 || len(stack) > 0 {
		return fmt.Errorf("unclosed bracket or string in %q", s)
	}
	return nil
}

// checkAlertTemplate parses an annotation the way Prometheus does (Go
// text/template), with the functions nsguard's rules use.
func checkAlertTemplate(s string) error {
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "title", "toUpper", "toLower", "first", "value", "label", "query"} {
		funcs[f] = func(...any) string { return "" }
	}
	_, err := template.New("annotation").Funcs(funcs).Option("missingkey=zero").
		Parse("{{ $labels := .Labels }}{{ $value := .Value }}" + s)
	return err
}
