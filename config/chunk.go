package config

import (
	"bytes"
	"reflect"
	"runtime"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// A chunked load reads a large inventory in pieces. yaml.v3 builds a node
// of about 150 bytes for every key, value and list item before anything is
// decoded, so a 100,000-domain file whole is 2 million nodes and 300 MB at
// once. When the file's domains are a block list under a top-level
// "domains:" key, which is how a large inventory is written, the entries
// are cut out by their indentation and parsed a few hundred at a time, the
// rest of the file alone; a domain entry's lines are found again only when
// a problem is reported.
//
// The cut is checked, not trusted: every piece must parse on its own into
// exactly the entries expected, starting on the lines expected, and the
// rest of the file must parse into a mapping with one "domains" key, empty
// where the entries were. Anything else (an alias between pieces, a flow
// list, a quoted string spanning entries, a tab in the indentation, line
// breaks other than \n) loads the file whole, which is always right; the
// fuzz target checks that both ways agree.

// chunkEntries is how many domain entries one parse reads: enough that the
// parser's own setup is paid rarely, few enough that the nodes stay small.
const chunkEntries = 512

// inventory is where the domain entries of a chunked load are.
type inventory struct {
	data []byte
	// keyLine is the line of "domains:"; start and end bound the entries.
	keyLine    int
	start, end int
	// entries holds each entry's first byte and line.
	entries []entryPos
	count   int
	per     int
}

type entryPos struct {
	off  int
	line int
}

// findInventory locates a block list of domain entries under a top-level
// "domains:" key, or reports false.
func findInventory(data []byte, per int) (*inventory, bool) {
	// Line breaks yaml.v3 counts that this scan does not, and UTF-16.
	if bytes.Contains(data, []byte("\r")) || bytes.Contains(data, []byte("\u0085")) ||
		bytes.Contains(data, []byte("\u2028")) || bytes.Contains(data, []byte("\u2029")) ||
		bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil, false
	}
	inv := &inventory{data: data, per: per}
	found := false
	line := 0
	indent := -1
	inBlock := false
	for off := 0; off < len(data); {
		line++
		nl := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		next := len(data)
		if nl >= 0 {
			end, next = off+nl, off+nl+1
		}
		text := data[off:end]
		if !inBlock {
			if isDomainsKey(text) {
				if found {
					return nil, false // two "domains:" keys: let the whole load say so
				}
				found, inBlock, inv.keyLine = true, true, line
			}
			off = next
			continue
		}
		// Inside the block: blank and comment lines belong to it.
		n := 0
		for n < len(text) && text[n] == ' ' {
			n++
		}
		if n < len(text) && text[n] == '\t' {
			return nil, false
		}
		body := text[n:]
		if len(bytes.TrimSpace(body)) == 0 || body[0] == '#' {
			off = next
			continue
		}
		if indent < 0 {
			indent = n
			inv.start = off
		}
		switch {
		case n > indent:
			// inside the current entry
		case n == indent && isEntryStart(body):
			inv.entries = append(inv.entries, entryPos{off: off, line: line})
		case n > 0:
			// Less indented than the entries but not at the top level: no
			// valid file ends the list here.
			return nil, false
		default:
			inv.end = off
			inBlock = false
			off = next
			// The block has ended; nothing further may be a domains key.
			for off < len(data) {
				nl := bytes.IndexByte(data[off:], '\n')
				end := len(data)
				if nl >= 0 {
					end = off + nl
				}
				if isDomainsKey(data[off:end]) {
					return nil, false
				}
				if nl < 0 {
					break
				}
				off += nl + 1
			}
			goto done
		}
		off = next
	}
	if inBlock {
		inv.end = len(data)
	}
done:
	if !found || len(inv.entries) == 0 || inv.entries[0].off != inv.start {
		return nil, false
	}
	inv.count = len(inv.entries)
	return inv, true
}

// isDomainsKey: "domains:" at column 0 with nothing after it but a comment.
func isDomainsKey(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("domains:"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " \t")
	return len(rest) == 0 || rest[0] == '#'
}

// isEntryStart: "- …" or a lone "-".
func isEntryStart(body []byte) bool {
	return body[0] == '-' && (len(body) == 1 || body[1] == ' ')
}

// chunk returns the bytes and first line of the c-th piece of entries.
func (inv *inventory) chunk(c int) ([]byte, int, int, int) {
	first := c * inv.per
	last := min(first+inv.per, inv.count)
	end := inv.end
	if last < inv.count {
		end = inv.entries[last].off
	}
	return inv.data[inv.entries[first].off:end], inv.entries[first].line, first, last
}

// rest is the file without the entries, each of their lines left empty so
// that the lines of everything else stay what they are.
func (inv *inventory) rest() []byte {
	block := inv.data[inv.start:inv.end]
	lines := bytes.Count(block, []byte("\n"))
	out := make([]byte, 0, len(inv.data)-len(block)+lines)
	out = append(out, inv.data[:inv.start]...)
	out = append(out, bytes.Repeat([]byte("\n"), lines)...)
	return append(out, inv.data[inv.end:]...)
}

// parseChunk parses the c-th piece into its entries' nodes, or reports
// false when it does not hold exactly the entries the cut expects.
func (inv *inventory) parseChunk(c int) ([]*yaml.Node, int, int, bool) {
	data, line, first, last := inv.chunk(c)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) != 1 {
		return nil, 0, 0, false
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || seq.ShortTag() != "!!seq" || seq.Anchor != "" || len(seq.Content) != last-first {
		return nil, 0, 0, false
	}
	for i, item := range seq.Content {
		if item.Line+line-1 != inv.entries[first+i].line {
			return nil, 0, 0, false
		}
	}
	return seq.Content, line - 1, first, true
}

// chunkLines decodes the c-th piece again, this time recording every
// path's line.
func (inv *inventory) chunkLines(c int) map[string]int {
	items, offset, first, ok := inv.parseChunk(c)
	if !ok {
		return nil
	}
	d := newDecoder("", len(inv.data))
	d.offset = offset
	for i, item := range items {
		var dom Domain
		d.decode(item, reflect.ValueOf(&dom).Elem(), domainPath(first+i))
	}
	return d.lines
}

// parseChunked loads data piece by piece, or reports false when it must be
// loaded whole.
func parseChunked(name string, data []byte, per int) (*Config, Errors, bool) {
	inv, ok := findInventory(data, per)
	if !ok {
		return nil, nil, false
	}
	root, errs := document(name, inv.rest())
	if errs != nil || root.Kind != yaml.MappingNode {
		return nil, nil, false
	}
	keys := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "domains" {
			continue
		}
		keys++
		if k.Line != inv.keyLine || k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!null" || v.Tag != "!!null" || v.Style != 0 || v.Value != "" || v.Anchor != "" {
			return nil, nil, false
		}
	}
	if keys != 1 {
		return nil, nil, false
	}

	cfg := Default()
	cfg.File = name
	d := newDecoder(name, len(data))
	cv := reflect.ValueOf(cfg).Elem()
	d.decode(root, cv, "")
	d.lines["domains"] = inv.entries[0].line
	cfg.Domains = make([]Domain, inv.count)
	lines := d.lines
	d.lines = nil
	chunks := inv.parsed()
	defer chunks.stop()
	for c := 0; c*inv.per < inv.count; c++ {
		p := chunks.next()
		if !p.ok {
			return nil, nil, false
		}
		d.offset = p.offset
		for i, item := range p.items {
			d.decode(item, reflect.ValueOf(&cfg.Domains[p.first+i]).Elem(), domainPath(p.first+i))
		}
	}
	d.offset = 0
	d.lines = lines
	d.loc.paths = lines
	d.loc.inv = inv
	return cfg, finish(cfg, d), true
}

// parsedChunks hands over the inventory's pieces, parsed, in order. The
// pieces are parsed ahead on other goroutines while the caller decodes the
// one before (yaml.v3's parse is two thirds of a 10,000-domain load, and
// nothing else runs then): at most GOMAXPROCS pieces are parsed and not yet
// taken, so the nodes alive at once stay a few pieces' worth.
type parsedChunks struct {
	out  []chan parsedChunk
	at   int
	free chan struct{} // a token per piece that may be parsed ahead
	done chan struct{} // closed by stop: parse no more
}

type parsedChunk struct {
	items         []*yaml.Node
	offset, first int
	ok            bool
}

func (inv *inventory) parsed() *parsedChunks {
	n := (inv.count + inv.per - 1) / inv.per
	ahead := max(1, runtime.GOMAXPROCS(0))
	pc := &parsedChunks{out: make([]chan parsedChunk, n), free: make(chan struct{}, ahead), done: make(chan struct{})}
	for c := range pc.out {
		pc.out[c] = make(chan parsedChunk, 1)
	}
	for range ahead {
		pc.free <- struct{}{}
	}
	go func() {
		for c := range n {
			select {
			case <-pc.free:
			case <-pc.done:
				return
			}
			go func() {
				items, offset, first, ok := inv.parseChunk(c)
				pc.out[c] <- parsedChunk{items, offset, first, ok}
			}()
		}
	}()
	return pc
}

// next returns the next piece, waiting for its parse.
func (pc *parsedChunks) next() parsedChunk {
	p := <-pc.out[pc.at]
	pc.at++
	pc.free <- struct{}{}
	return p
}

// stop ends the parsing ahead (pieces being parsed finish on their own).
func (pc *parsedChunks) stop() { close(pc.done) }

func domainPath(i int) string { return "domains[" + strconv.Itoa(i) + "]" }
