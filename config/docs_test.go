package config

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestEveryKeyIsDocumented walks the schema and requires each key path to
// appear in docs/config.md, so the reference cannot fall behind the code.
func TestEveryKeyIsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var walk func(reflect.Type, string)
	walk = func(t0 reflect.Type, prefix string) {
		for t0.Kind() == reflect.Pointer || t0.Kind() == reflect.Slice {
			t0 = t0.Elem()
			if prefix != "" && !strings.HasSuffix(prefix, "[]") {
				prefix += "[]"
			}
		}
		if t0.Kind() != reflect.Struct || t0 == durationType {
			return
		}
		for i := 0; i < t0.NumField(); i++ {
			f := t0.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "" || tag == "-" {
				continue
			}
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			leaf := f.Type
			for leaf.Kind() == reflect.Pointer || leaf.Kind() == reflect.Slice {
				leaf = leaf.Elem()
			}
			isStruct := leaf.Kind() == reflect.Struct && leaf != durationType
			if f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct {
				walk(f.Type.Elem(), path+".NAME")
				continue
			}
			if isStruct && f.Type.Kind() != reflect.Pointer {
				walk(f.Type, path)
				continue
			}
			switch {
			case strings.HasPrefix(path, "contacts."), strings.HasPrefix(path, "playbooks[].steps[]."), strings.HasPrefix(path, "playbooks[].rollback[]."):
				// documented in their own tables, by key name
				if !strings.Contains(doc, "`"+tag+"`") && !strings.Contains(doc, "."+tag) {
					t.Errorf("docs/config.md does not mention %s", path)
				}
			case !strings.Contains(doc, "`"+path+"`"):
				t.Errorf("docs/config.md does not document %s", path)
			}
			if isStruct {
				walk(f.Type, path)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

// TestDocumentedDefaultsAreTheDefaults reads the default column of
// docs/config.md where it is one literal (`53`, `2s`, `true`, a string)
// and requires Default() to hold that value, so a changed default cannot
// leave the reference quoting the old one.
func TestDocumentedDefaultsAreTheDefaults(t *testing.T) {
	b, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := reflect.ValueOf(Default()).Elem()
	checked := 0
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		key, def := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		if !strings.HasPrefix(key, "`") || !strings.HasPrefix(def, "`") || strings.Count(def, "`") != 2 {
			continue
		}
		key, literal := strings.Trim(key, "`"), strings.Trim(strings.SplitN(def[1:], "`", 2)[0], " ")
		v, ok := fieldByYAMLPath(defaults, key)
		if !ok {
			continue
		}
		var got string
		switch {
		case v.Type() == durationType:
			d, err := ParseDuration(literal)
			if err != nil {
				t.Errorf("docs/config.md: %s: default %q is not a duration", key, literal)
				continue
			}
			if Duration(v.Int()) != d {
				t.Errorf("docs/config.md says %s defaults to %s; Default() has %s", key, literal, Duration(v.Int()))
			}
			checked++
			continue
		case v.Kind() == reflect.Int, v.Kind() == reflect.Int64:
			got = strconv.FormatInt(v.Int(), 10)
		case v.Kind() == reflect.Float64:
			got = strconv.FormatFloat(v.Float(), 'f', -1, 64)
		case v.Kind() == reflect.Bool:
			got = strconv.FormatBool(v.Bool())
		case v.Kind() == reflect.String:
			got = v.String()
		default:
			continue
		}
		if got != literal {
			t.Errorf("docs/config.md says %s defaults to %s; Default() has %s", key, literal, got)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d defaults read from docs/config.md: has its table format changed?", checked)
	}
}

// fieldByYAMLPath finds a dotted key path (resolver.timeout) in v by the
// fields' yaml tags, as the decoder does.
func fieldByYAMLPath(v reflect.Value, path string) (reflect.Value, bool) {
	for _, part := range strings.Split(path, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		i, ok := fieldsOf(v.Type()).index[part]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.Field(i)
	}
	return v, true
}
