package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// maxConfigSize bounds what Load reads: a config is never this large, and a
// wrong path (a log, a device) must not be slurped into memory.
const maxConfigSize = 16 << 20

// Load reads, decodes and validates a config file. The error, if any, is an
// Errors value listing every problem with file, line and field path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", errors.Unwrap(err))}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	if len(data) > maxConfigSize {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("config larger than %d bytes", maxConfigSize)}}
	}
	return Parse(path, data)
}

// Parse decodes and validates config data; name is used in error messages and
// as the base for relative paths inside the config.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.File = name
	d := &decoder{file: name, lines: map[string]int{}}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Msg: "config is empty"}}
		}
		return nil, Errors{{File: name, Msg: yamlSyntax(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: name, Line: extra.Line, Msg: "more than one YAML document; nsguard reads one"}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: name, Msg: "config is empty"}}
	}
	d.decode(doc.Content[0], reflectValue(cfg), "")
	cfg.lines = d.lines
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	base := ""
	if name != "" {
		base = filepath.Dir(name)
	}
	cfg.resolvePaths(base)
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
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
