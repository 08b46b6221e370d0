package notify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretSize bounds a secret file: a token is tens of bytes, so a large
// file is the wrong file, and reading it whole would be a mistake.
const maxSecretSize = 64 << 10

// ReadSecret returns the secret held in file, or else in the environment
// variable env, trimmed of surrounding whitespace. Errors name the file or
// the variable, never the content.
func ReadSecret(file, env string) (string, error) {
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("read secret file %s: %w", file, errors.Unwrap(err))
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
		if err != nil {
			return "", fmt.Errorf("read secret file %s: %w", file, err)
		}
		if len(b) > maxSecretSize {
			return "", fmt.Errorf("secret file %s is larger than %d bytes: is it the right file?", file, maxSecretSize)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		if strings.ContainsAny(s, "\r\n") {
			return "", fmt.Errorf("secret file %s holds more than one line", file)
		}
		return s, nil
	case env != "":
		s := strings.TrimSpace(os.Getenv(env))
		if s == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", env)
		}
		return s, nil
	}
	return "", errors.New("no secret configured (set a *_file or *_env)")
}
