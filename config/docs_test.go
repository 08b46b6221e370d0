package config

import (
	"os"
	"reflect"
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
