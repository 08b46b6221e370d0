package registry

import (
	"testing"

	"github.com/openrdap/rdap"
)

func BenchmarkParseWhois(b *testing.B) {
	for _, tc := range []struct{ file, tld string }{
		{"verisign-thin.txt", "com"}, {"registrar-thick.txt", "com"}, {"cnnic.txt", "cn"}, {"jprs.txt", "jp"},
	} {
		answer := readFixture(b, "whois/"+tc.file)
		b.Run(tc.file, func(b *testing.B) {
			b.SetBytes(int64(len(answer)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseWhois(answer, tc.tld); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseRDAP(b *testing.B) {
	data := []byte(readFixture(b, "rdap/registry.json"))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		obj, err := rdap.NewDecoder(data).Decode()
		if err != nil {
			b.Fatal(err)
		}
		fromRDAP(obj.(*rdap.Domain))
	}
}
