package failover

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// maxKeyFileSize bounds a TSIG key file: tsig-keygen writes about a
// hundred bytes, so anything large is the wrong file.
const maxKeyFileSize = 64 << 10

// Key is a TSIG key as `tsig-keygen` writes it. The secret is unexported
// and String omits it, so a Key can be logged, wrapped in an error or put
// in JSON without leaking it.
type Key struct {
	// Name is the key's name as a lower-case FQDN ("nsguard-failover.").
	Name string `json:"name"`
	// Algorithm is miekg/dns's name for it ("hmac-sha256.").
	Algorithm string `json:"algorithm"`
	secret    string
}

// Secret is the base64 secret, for the DNS client only.
func (k Key) Secret() string { return k.secret }

// String names the key and its algorithm, never the secret.
func (k Key) String() string {
	return fmt.Sprintf("%s (%s)", k.Name, strings.TrimSuffix(k.Algorithm, "."))
}

// GoString keeps %#v from printing the secret too.
func (k Key) GoString() string { return "failover.Key{" + k.String() + "}" }

var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// ReadKeyFile reads a TSIG key file in the tsig-keygen format.
func ReadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("tsig_file %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return Key{}, fmt.Errorf("tsig_file %s: %w", path, err)
	}
	if len(b) > maxKeyFileSize {
		return Key{}, fmt.Errorf("tsig_file %s is larger than %d bytes: is it the right file?", path, maxKeyFileSize)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("tsig_file %s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses one key statement in BIND's syntax, as tsig-keygen and
// ddns-confgen print it:
//
//	key "name" {
//		algorithm hmac-sha256;
//		secret "base64";
//	};
//
// Comments (#, //, /* */), any layout and an unquoted name are accepted;
// exactly one key must be present. Errors give line numbers and never
// quote the file's text, which may hold the secret.
func ParseKey(text string) (Key, error) {
	toks, err := tokenize(text)
	if err != nil {
		return Key{}, err
	}
	p := &keyParser{toks: toks}
	var keys []Key
	for !p.done() {
		k, err := p.key()
		if err != nil {
			return Key{}, err
		}
		keys = append(keys, k)
	}
	switch len(keys) {
	case 0:
		return Key{}, errors.New("no key statement (want the output of tsig-keygen -a hmac-sha256 NAME)")
	case 1:
		return keys[0], nil
	}
	return Key{}, fmt.Errorf("%d key statements: give the step a file holding exactly one", len(keys))
}

type token struct {
	text   string
	quoted bool
	line   int
}

func tokenize(s string) ([]token, error) {
	var out []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < len(s) && s[i+1] == '/'):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			start := line
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: comment never closed", start)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			out = append(out, token{text: string(c), line: line})
			i++
		case c == '"':
			end := strings.IndexAny(s[i+1:], "\"\n")
			if end < 0 || s[i+1+end] != '"' {
				return nil, fmt.Errorf("line %d: quoted string never closed", line)
			}
			out = append(out, token{text: s[i+1 : i+1+end], quoted: true, line: line})
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) {
				if s[j] == '/' && j+1 < len(s) && (s[j+1] == '/' || s[j+1] == '*') {
					break
				}
				j++
			}
			if j == i {
				// A lone '/' or any byte no rule takes.
				j = i + 1
			}
			out = append(out, token{text: s[i:j], line: line})
			i = j
		}
	}
	return out, nil
}

type keyParser struct {
	toks []token
	pos  int
}

func (p *keyParser) done() bool { return p.pos >= len(p.toks) }

func (p *keyParser) lastLine() int {
	if len(p.toks) == 0 {
		return 1
	}
	return p.toks[len(p.toks)-1].line
}

// next returns the next token; want names what was expected, for errors.
func (p *keyParser) next(want string) (token, error) {
	if p.done() {
		return token{}, fmt.Errorf("line %d: file ends where %s was expected", p.lastLine(), want)
	}
	t := p.toks[p.pos]
	p.pos++
	return t, nil
}

func (p *keyParser) expect(sym, want string) error {
	t, err := p.next(want)
	if err != nil {
		return err
	}
	if t.quoted || t.text != sym {
		return fmt.Errorf("line %d: %s expected", t.line, want)
	}
	return nil
}

func (p *keyParser) key() (Key, error) {
	t, err := p.next(`"key"`)
	if err != nil {
		return Key{}, err
	}
	if t.quoted || !strings.EqualFold(t.text, "key") {
		return Key{}, fmt.Errorf(`line %d: a key file holds key statements only ("key NAME { ... };")`, t.line)
	}
	name, err := p.next("the key's name")
	if err != nil {
		return Key{}, err
	}
	if !name.quoted && (name.text == "{" || name.text == ";") {
		return Key{}, fmt.Errorf("line %d: the key has no name", name.line)
	}
	if _, ok := dns.IsDomainName(name.text); !ok || name.text == "" {
		return Key{}, fmt.Errorf("line %d: the key's name is not a valid DNS name", name.line)
	}
	if err := p.expect("{", `"{"`); err != nil {
		return Key{}, err
	}
	k := Key{Name: dns.CanonicalName(name.text)}
	haveAlg := false
	for {
		t, err := p.next(`"algorithm", "secret" or "}"`)
		if err != nil {
			return Key{}, err
		}
		if !t.quoted && t.text == "}" {
			break
		}
		word := strings.ToLower(t.text)
		if t.quoted || (word != "algorithm" && word != "secret") {
			return Key{}, fmt.Errorf(`line %d: only "algorithm" and "secret" belong in a key statement`, t.line)
		}
		v, err := p.next("a value for " + word)
		if err != nil {
			return Key{}, err
		}
		if !v.quoted && (v.text == ";" || v.text == "}" || v.text == "{") {
			return Key{}, fmt.Errorf("line %d: %s has no value", v.line, word)
		}
		switch word {
		case "algorithm":
			alg, ok := algorithms[strings.ToLower(strings.TrimSuffix(v.text, "."))]
			if !ok {
				if strings.HasPrefix(strings.ToLower(v.text), "hmac-md5") {
					return Key{}, fmt.Errorf("line %d: hmac-md5 keys are not supported: make a new key with tsig-keygen -a hmac-sha256", v.line)
				}
				return Key{}, fmt.Errorf("line %d: unknown algorithm (want hmac-sha256, or hmac-sha1/224/384/512)", v.line)
			}
			k.Algorithm, haveAlg = alg, true
		case "secret":
			raw, err := base64.StdEncoding.DecodeString(v.text)
			if err != nil || len(raw) == 0 {
				return Key{}, fmt.Errorf("line %d: the secret is not base64", v.line)
			}
			k.secret = v.text
		}
		if err := p.expect(";", `";" after the `+word); err != nil {
			return Key{}, err
		}
	}
	// The closing ';' after '}' is BIND's syntax; a file without it is
	// still unambiguous.
	if !p.done() && !p.toks[p.pos].quoted && p.toks[p.pos].text == ";" {
		p.pos++
	}
	if !haveAlg {
		return Key{}, fmt.Errorf("key %s has no algorithm", k.Name)
	}
	if k.secret == "" {
		return Key{}, fmt.Errorf("key %s has no secret", k.Name)
	}
	return k, nil
}
