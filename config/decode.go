package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a config file, located by line and field path.
type FieldError struct {
	File  string `json:"file"`
	Line  int    `json:"line,omitempty"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

func (e FieldError) Error() string {
	loc := e.File
	if loc == "" {
		loc = "config"
	}
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// Errors is every problem found in one config file.
type Errors []FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// decoder walks a yaml.Node tree into Go values strictly: unknown keys, wrong
// types and bad durations are errors carrying line and field path. yaml.v3's
// own KnownFields mode reports the line but not the path, and stops at the
// first problem; operators fixing a config want all problems at once.
//
// Besides the errors it remembers what validation needs to report the rest
// without echoing them: the paths whose value could not be read, the
// mappings holding an unknown key and the keys those were probably meant to
// be, and the required keys a mapping leaves out.
type decoder struct {
	file string
	errs Errors
	// lines records each decoded path's line; nil records nothing (the
	// domain entries of a chunked load, found again on demand).
	lines map[string]int
	// offset is added to node lines: a chunk's first line less one.
	offset int
	loc    *locations
	// budget bounds the values decoded: an alias may repeat a whole
	// subtree, and aliases of aliases would expand without end.
	budget    int
	exhausted bool
}

func newDecoder(file string, dataLen int) *decoder {
	return &decoder{
		file:   file,
		lines:  map[string]int{},
		loc:    &locations{absent: map[string]bool{}, failed: map[string]bool{}, unknownIn: map[string]bool{}, meant: map[string]bool{}},
		budget: 100_000 + dataLen,
	}
}

var durationType = reflect.TypeOf(Duration(0))

// fail reports a value that could not be decoded: validation says nothing
// more about path or what is under it.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.loc.failed[path] = true
	d.report(n, path, format, args...)
}

func (d *decoder) report(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil && n.Line > 0 {
		line = n.Line + d.offset
	}
	d.errs = append(d.errs, FieldError{File: d.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported YAML node"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.exhausted {
		return
	}
	if d.budget--; d.budget < 0 {
		d.exhausted = true
		d.loc.failed[""] = true
		d.errs = append(d.errs, FieldError{File: d.file, Msg: "config expands to too many values: are aliases (*name) repeated inside aliased lists?"})
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" && d.lines != nil {
		d.lines[path] = n.Line + d.offset
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// An explicit null leaves the default in place.
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a duration such as 30s or 90d, got %s", kindName(n))
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", kindName(n))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := joinPath(path, k.Value)
			if seen[k.Value] {
				d.report(k, sub, "duplicate key")
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, sub)
			v.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := scalarBool(n)
		if !ok {
			d.fail(n, path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(n, path, "want an integer, got %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			d.fail(n, path, "integer %s out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
			d.fail(n, path, "want a number, got %s", kindName(n))
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.fail(n, path, "invalid number %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "internal: unsupported field type %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	info := fieldsOf(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := joinPath(path, k.Value)
		idx, ok := info.index[k.Value]
		if !ok {
			meant := closest(k.Value, info.names)
			d.loc.unknownIn[path] = true
			if meant != "" {
				d.loc.meant[joinPath(path, meant)] = true
				d.report(k, sub, "unknown field (did you mean %q?)", meant)
			} else {
				d.report(k, sub, "unknown field (known: %s)", strings.Join(info.sorted, ", "))
			}
			continue
		}
		if seen[k.Value] {
			d.report(k, sub, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), sub)
	}
	for _, r := range info.required {
		if !seen[r] {
			d.loc.absent[joinPath(path, r)] = true
		}
	}
}

// structFields is what decodeStruct needs of a struct type, computed once
// per type: a 100,000-domain inventory decodes the Domain type 100,000 times.
type structFields struct {
	index    map[string]int
	names    []string // in declaration order
	sorted   []string
	required []string // keys tagged nsguard:"required"
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		f.index[tag] = i
		f.names = append(f.names, tag)
		if t.Field(i).Tag.Get("nsguard") == "required" {
			f.required = append(f.required, tag)
		}
	}
	f.sorted = append([]string(nil), f.names...)
	sort.Strings(f.sorted)
	fieldCache.Store(t, f)
	return f
}

func scalarBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// closest is the known field name a typo most likely meant ("" if none is
// within two edits).
func closest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := levenshtein(got, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
