package failover

import (
	"net/url"
	"testing"
)

func TestRedactURLHidesSecretsInPathsAndQueries(t *testing.T) {
	for in, want := range map[string]string{
		"https://config.internal/switch":                                      "https://config.internal/switch",
		"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX": "https://hooks.slack.com/services/…",
		"https://user:pw@api.example/v1/switch?token=s3cret":                  "https://api.example/v1/…?…",
		"https://api.example/0123456789abcdef0123456789abcdef":                "https://api.example/…",
		"http://127.0.0.1:8080":                                               "http://127.0.0.1:8080",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}
