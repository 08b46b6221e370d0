package config

import (
	"strconv"
	"strings"
)

// locations is what a loaded config knows of its file beyond the values:
// where each field is, and what decoding found, so that validation can
// report every remaining problem without repeating those.
type locations struct {
	// paths maps a field path ("domains[2].tier") to its line. After a
	// chunked load it holds the paths outside the domain entries only;
	// inv finds those again on demand.
	paths map[string]int
	inv   *inventory
	// absent holds the required keys a mapping leaves out.
	absent map[string]bool
	// failed holds the paths whose value could not be decoded.
	failed map[string]bool
	// unknownIn holds the mappings with an unknown key, meant the keys
	// those unknown keys were probably meant to be.
	unknownIn map[string]bool
	meant     map[string]bool
}

// Line returns the line of a field path in the config file (0 if unknown).
func (c *Config) Line(path string) int {
	if c.loc == nil {
		return 0
	}
	l, _ := (&lineFinder{loc: c.loc}).line(path)
	return l
}

// Problem is err as a problem of the field at path, on the field's line (or
// the nearest enclosing field's): checks made outside this package read
// like the config's own.
func (c *Config) Problem(path string, err error) FieldError {
	line := 0
	if c.loc != nil {
		line = (&lineFinder{loc: c.loc}).lineOrParent(path)
	}
	return FieldError{File: c.File, Line: line, Field: path, Msg: err.Error()}
}

// lineFinder looks lines up, reading a chunked load's domain entries again
// when asked; it keeps the last chunk read, since errors come in order.
type lineFinder struct {
	loc   *locations
	chunk int
	lines map[string]int
}

func (f *lineFinder) line(path string) (int, bool) {
	if l, ok := f.loc.paths[path]; ok {
		return l, true
	}
	inv := f.loc.inv
	if inv == nil {
		return 0, false
	}
	i, ok := domainIndex(path)
	if !ok || i >= inv.count {
		return 0, false
	}
	c := i / inv.per
	if f.lines == nil || f.chunk != c {
		f.chunk, f.lines = c, inv.chunkLines(c)
	}
	l, ok := f.lines[path]
	return l, ok
}

// lineOrParent is the line of path, or of the nearest enclosing field when
// path itself is absent (a required key left out).
func (f *lineFinder) lineOrParent(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := f.line(p); ok {
			return l
		}
	}
	return 0
}

// domainIndex reads i from a path "domains[i]…".
func domainIndex(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "domains[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 1 {
		return 0, false
	}
	i, err := strconv.Atoi(rest[:end])
	return i, err == nil && i >= 0
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

// echoes reports whether a validation problem at path only repeats what
// decoding already said: the value there, or around it, could not be read;
// or a key of its mapping is unknown, or is what an unknown key was
// probably meant to be ("chanel" for channel: no "channel required" too).
func (l *locations) echoes(path string) bool {
	if l.failed[""] {
		return true
	}
	for p := path; p != ""; p = parentPath(p) {
		if l.failed[p] {
			return true
		}
	}
	return l.unknownIn[path] || l.meant[path]
}

// unreadDomain reports whether some domain's name could not be read, so a
// reference to a domain not found may be to that one.
func (l *locations) unreadDomain(n int) bool {
	if l.failed["domains"] {
		return true
	}
	for i := range n {
		p := domainPath(i)
		if l.failed[p] || l.failed[p+".name"] {
			return true
		}
	}
	return false
}

// present reports whether a required key is in the file.
func (l *locations) present(path string) bool { return !l.absent[path] }
