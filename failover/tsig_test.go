package failover

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const testSecret = "QAwhy+aNtbVc359mAgu+IqfwUbQR0rR7MUf9pjtRArw="

func TestParseKey(t *testing.T) {
	good := []struct {
		name, text, key, alg string
	}{
		{"tsig-keygen", "key \"nsguard-switch\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + testSecret + "\";\n};\n", "nsguard-switch.", dns.HmacSHA256},
		{"one line, unquoted name, trailing dot", `key Switch.Example. { algorithm HMAC-SHA512; secret "` + testSecret + `"; };`, "switch.example.", dns.HmacSHA512},
		{"comments of every kind, no final semicolon", "# made by tsig-keygen\n// for the switch\nkey \"k\" { /* the\nalgorithm */ algorithm hmac-sha1; secret \"" + testSecret + "\"; }", "k.", dns.HmacSHA1},
		{"secret before algorithm, CRLF", "key \"k\" {\r\n secret \"" + testSecret + "\";\r\n algorithm hmac-sha384;\r\n};\r\n", "k.", dns.HmacSHA384},
		{"ddns-confgen style", "# To activate this key, place the following in named.conf...\nkey \"ddns-key.switch\" {\n\talgorithm hmac-sha224;\n\tsecret \"" + testSecret + "\";\n};\n# and a comment after", "ddns-key.switch.", dns.HmacSHA224},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if k.Name != tc.key || k.Algorithm != tc.alg || k.Secret() != testSecret {
				t.Errorf("got %s %s", k.Name, k.Algorithm)
			}
			for _, s := range []string{k.String(), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
				if strings.Contains(s, testSecret) {
					t.Errorf("the key prints its secret: %s", s)
				}
			}
		})
	}
	bad := []struct{ name, text, want string }{
		{"empty", "", "no key statement"},
		{"only comments", "# nothing here\n", "no key statement"},
		{"two keys", `key a { algorithm hmac-sha256; secret "` + testSecret + `"; }; key b { algorithm hmac-sha256; secret "` + testSecret + `"; };`, "2 key statements"},
		{"no secret", `key a { algorithm hmac-sha256; };`, "has no secret"},
		{"no algorithm", `key a { secret "` + testSecret + `"; };`, "has no algorithm"},
		{"md5", `key a { algorithm hmac-md5; secret "` + testSecret + `"; };`, "hmac-md5 keys are not supported"},
		{"unknown algorithm", `key a { algorithm rot13; secret "` + testSecret + `"; };`, "unknown algorithm"},
		{"not base64", `key a { algorithm hmac-sha256; secret "not base64!"; };`, "line 1: the secret is not base64"},
		{"unclosed quote", "key a {\n algorithm hmac-sha256;\n secret \"" + testSecret + ";\n};", "line 3: quoted string never closed"},
		{"unclosed comment", "/* key", "comment never closed"},
		{"unclosed brace", `key a { algorithm hmac-sha256; secret "` + testSecret + `";`, "file ends"},
		{"missing semicolon", "key a {\n algorithm hmac-sha256\n secret \"" + testSecret + "\";\n};", `line 3: ";" after the algorithm expected`},
		{"a named.conf", `options { directory "/var/named"; };`, "key statements only"},
		{"stray statement", `key a { algorithm hmac-sha256; secret "` + testSecret + `"; owner "x"; };`, `only "algorithm" and "secret"`},
		{"bad name", `key "a..b" { algorithm hmac-sha256; secret "` + testSecret + `"; };`, "not a valid DNS name"},
		{"nameless", `key { algorithm hmac-sha256; };`, "has no name"},
		{"a private key file", "-----BEGIN PRIVATE KEY-----\nMIIB" + testSecret + "\n-----END PRIVATE KEY-----\n", "key statements only"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey(tc.text)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "MIIB") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxKeyFileSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing: no such file") {
		t.Errorf("missing file: %v", err)
	}
	ok := filepath.Join(dir, "k")
	os.WriteFile(ok, []byte(`key k { algorithm hmac-sha256; secret "`+testSecret+`"; };`), 0o600)
	if k, err := ReadKeyFile(ok); err != nil || k.Name != "k." {
		t.Errorf("good file: %v %v", k, err)
	}
}

// FuzzParseKey: no input panics or hangs the parser, and an accepted key
// has a name, an algorithm and a base64 secret, none of which an error
// would quote.
func FuzzParseKey(f *testing.F) {
	f.Add("key \"a\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + testSecret + "\";\n};\n")
	f.Add(`key a { secret "x"; algorithm hmac-md5; }`)
	f.Add("/* */ # \n // key {;};")
	f.Add("key \"unterminated")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.Name == "" || k.Algorithm == "" || k.Secret() == "" {
			t.Fatalf("accepted an incomplete key: %v", k)
		}
		if strings.Contains(k.String(), k.Secret()) {
			t.Fatalf("String shows the secret")
		}
	})
}
