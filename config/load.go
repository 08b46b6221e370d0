package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigSize bounds what Load reads: a config is never this large, and a
// wrong path (a log, a device) must not be slurped into memory.
const maxConfigSize = 16 << 20

// Load reads, decodes and validates a config file. The error, if any, is an
// Errors value listing every problem with file, line and field path.
func Load(path string) (*Config, error) {
	cfg, errs := LoadPartial(path)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// LoadPartial is Load for `nsguard config check`: with every problem it
// returns the config as far as it could be read (nil only when the file is
// not one readable YAML document), so that the files the config names can
// be checked in the same run. Nothing may start on a config that came
// with problems.
func LoadPartial(path string) (*Config, Errors) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", errors.Unwrap(err))}}
	}
	defer f.Close()
	data, err := readConfig(f)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	if len(data) > maxConfigSize {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("config larger than %d bytes", maxConfigSize)}}
	}
	return parse(path, data)
}

// readConfig reads at most maxConfigSize+1 bytes into a buffer of the
// file's size: a growing buffer would leave up to the file's size again in
// garbage, and a large inventory is kept while the config is in use.
func readConfig(f *os.File) ([]byte, error) {
	size := 0
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = int(min(st.Size(), maxConfigSize))
	}
	data := make([]byte, size+1)
	n, err := io.ReadFull(f, data)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return data[:n], nil
	case err != nil:
		return nil, err
	}
	// Not a regular file, or one that grew since Stat: read on, bounded.
	rest, err := io.ReadAll(io.LimitReader(f, int64(maxConfigSize+1-n)))
	return append(data, rest...), err
}

// Parse decodes and validates config data; name is used in error messages and
// as the base for relative paths inside the config. A large inventory is
// read in chunks (see chunk.go), anything else whole.
func Parse(name string, data []byte) (*Config, error) {
	cfg, errs := parse(name, data)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

func parse(name string, data []byte) (*Config, Errors) {
	cfg, errs, ok := parseChunked(name, data, chunkEntries)
	if !ok {
		cfg, errs = parseWhole(name, data)
	}
	return cfg, errs
}

// parseWhole decodes the file as one yaml.v3 node tree.
func parseWhole(name string, data []byte) (*Config, Errors) {
	root, errs := document(name, data)
	if errs != nil {
		return nil, errs
	}
	cfg := Default()
	cfg.File = name
	d := newDecoder(name, len(data))
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	d.loc.paths = d.lines
	return cfg, finish(cfg, d)
}

// document parses data as exactly one YAML document and returns its root.
func document(name string, data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Msg: "config is empty"}}
		}
		return nil, Errors{{File: name, Msg: yamlSyntax(err)}}
	}
	// A second document, valid or not, is refused: nsguard would read the
	// first and silently drop the rest (two configs pasted into one file).
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := secondDocumentLine(data)
		if line == 0 && err == nil {
			line = extra.Line
		}
		return nil, Errors{{File: name, Line: line, Msg: "more than one YAML document (the second starts here): nsguard reads one; merge them or remove the second"}}
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == "!!null") {
		return nil, Errors{{File: name, Msg: "config is empty"}}
	}
	return doc.Content[0], nil
}

// secondDocumentLine is the line where a second YAML document starts: a
// "---" after content, or content after a "..." end marker. A marker at
// the start of a line cannot be inside a scalar, so a line scan finds it.
func secondDocumentLine(data []byte) int {
	content, ended := false, false
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		marker := func(m string) bool {
			rest, ok := strings.CutPrefix(line, m)
			return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t')
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case marker("---"):
			if content || ended {
				return i + 1
			}
			content = true // an explicit start: what follows is the first document
		case marker("..."):
			ended = true
		case trimmed == "" || trimmed[0] == '#' || (!content && trimmed[0] == '%'):
		default:
			if ended {
				return i + 1
			}
			content = true
		}
	}
	return 0
}

// finish resolves relative paths and validates, and returns every problem
// decoding and validation found, in the order of the file.
func finish(cfg *Config, d *decoder) Errors {
	cfg.loc = d.loc
	base := ""
	if cfg.File != "" {
		base = filepath.Dir(cfg.File)
	}
	cfg.resolvePaths(base)
	errs := d.errs
	if !d.exhausted {
		errs = append(errs, cfg.validate()...)
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	return errs
}

func yamlSyntax(err error) string {
	// yaml.v3 says "yaml: line 4: ..."; keep its line, drop the prefix noise.
	return fmt.Sprintf("invalid YAML: %s", bytes.TrimPrefix([]byte(err.Error()), []byte("yaml: ")))
}

// resolvePaths makes relative file paths relative to the config's directory,
// so a config works the same whatever the daemon's working directory is.
func (c *Config) resolvePaths(base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && base != "" {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Store.Path)
	abs(&c.Store.URLFile)
	abs(&c.Resolver.RootHints)
	abs(&c.Registry.CacheDir)
	abs(&c.Alerts.Slack.TokenFile)
	abs(&c.Alerts.Slack.WebhookURLFile)
	abs(&c.UI.BasicAuthFile)
	for i := range c.Playbooks {
		for _, steps := range [][]Step{c.Playbooks[i].Steps, c.Playbooks[i].Rollback} {
			for j := range steps {
				if u := steps[j].DNSUpdate; u != nil {
					abs(&u.TSIGFile)
				}
				if w := steps[j].Webhook; w != nil {
					abs(&w.SecretFile)
				}
			}
		}
	}
}
