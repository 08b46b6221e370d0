package failover

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/notify"
)

// webhook: one HTTP call to the company's own tooling (a load balancer's
// API, a CDN switch, a config service). URL, headers and body are Go
// templates over the run ({{.Primary}} {{.Backup}} {{.RunID}}
// {{.Playbook}} {{.By}} {{.Mode}}); the body is signed with HMAC-SHA256
// when a secret is configured: "<signature_header>: sha256=<hex>", the
// GitHub convention. Every attempt carries Idempotency-Key: nsguard-
// <playbook>-<run>-<step>, the same across retries and a resumed run, so
// the receiver can tell a repeat from a new request.

// maxWebhookResponse bounds what is read of an answer.
const maxWebhookResponse = 64 << 10

type webhookPlan struct {
	url, body *template.Template
	headers   map[string]*template.Template
	method    string
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s template: %v", ErrUsage, name, err)
	}
	return t, nil
}

func render(t *template.Template, data templateData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%w: %s template: %v", ErrUsage, t.Name(), err)
	}
	return b.String(), nil
}

// data is what templates see at plan time: the run and who runs it are
// not known yet.
func (pl *planner) data(runID string) templateData {
	return templateData{Playbook: pl.pb.Name, Primary: pl.pb.Primary, Backup: pl.pb.Backup, RunID: runID, By: "<who runs it>", Mode: "<mode>"}
}

func (pl *planner) planWebhook(sp *StepPlan, w *config.WebhookStep) error {
	hp := &webhookPlan{method: w.Method, headers: map[string]*template.Template{}}
	var err error
	if hp.url, err = parseTemplate("url", w.URL); err != nil {
		return err
	}
	if hp.body, err = parseTemplate("body", w.Body); err != nil {
		return err
	}
	for k, v := range w.Headers {
		if hp.headers[k], err = parseTemplate("header "+k, v); err != nil {
			return err
		}
	}
	signed := w.SecretFile != "" || w.SecretEnv != ""
	if signed {
		// Read it now so a run cannot fail half way on a missing secret.
		if _, err := notify.ReadSecret(w.SecretFile, w.SecretEnv); err != nil {
			return fmt.Errorf("%w: webhook secret: %v", ErrUsage, err)
		}
	}
	data := pl.data("<run id>")
	u, err := render(hp.url, data)
	if err != nil {
		return err
	}
	body, err := render(hp.body, data)
	if err != nil {
		return err
	}
	for _, t := range hp.headers {
		if _, err := render(t, data); err != nil {
			return err
		}
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("%w: webhook url does not render to an http(s) URL", ErrUsage)
	}
	sp.hook = hp
	sig := "unsigned"
	if signed {
		sig = "HMAC-SHA256 signature in " + w.SignatureHeader
	}
	sp.Summary = fmt.Sprintf("%s %s (%s), timeout %s, up to %d retries, success on 2xx", w.Method, redactURL(pu), sig, w.Timeout, w.Retries)
	if body != "" {
		sp.Notes = append(sp.Notes, "body: "+snippet(body, 300))
	}
	return nil
}

// redactURL drops a URL's query and user info: webhook URLs often carry
// their credential there.
func redactURL(u *url.URL) string {
	// Webhook URLs often carry their secret in the path (Slack's
	// /services/T…/B…/token, Jenkins, Teams): keep the first short segment,
	// which says what the endpoint is, and hide the rest.
	path := ""
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if segs[0] != "" {
		if len(segs[0]) <= 24 {
			path = "/" + segs[0]
		} else {
			path = "/…"
		}
		if len(segs) > 1 {
			path += "/…"
		}
	}
	s := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() + path
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

// snippet makes an untrusted text safe to store and show: one line,
// printable, bounded.
func snippet(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		cut := n
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Sign returns the signature header value for body: "sha256=" and the hex
// HMAC-SHA256 of the body with secret. Receivers compute the same and
// compare in constant time.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// retryable says whether an HTTP status is worth another attempt.
func retryable(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

func (e *Engine) execWebhook(ctx context.Context, rc *runCtx, sp *StepPlan) (request, response string, err error) {
	w, hp := sp.step.Webhook, sp.hook
	data := rc.data
	u, err := render(hp.url, data)
	if err != nil {
		return "", "", err
	}
	body, err := render(hp.body, data)
	if err != nil {
		return "", "", err
	}
	headers := map[string]string{}
	for k, t := range hp.headers {
		if headers[k], err = render(t, data); err != nil {
			return "", "", err
		}
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", "", fmt.Errorf("webhook url: %w", err)
	}
	secret := ""
	if w.SecretFile != "" || w.SecretEnv != "" {
		if secret, err = notify.ReadSecret(w.SecretFile, w.SecretEnv); err != nil {
			return "", "", fmt.Errorf("webhook secret: %w", err)
		}
	}
	idem := fmt.Sprintf("nsguard-%s-%d-%d", rc.plan.Playbook, rc.runID, sp.Index)
	var names []string
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	request = fmt.Sprintf("%s %s, Idempotency-Key %s", w.Method, redactURL(pu), idem)
	if secret != "" {
		request += ", signed (" + w.SignatureHeader + ")"
	}
	if len(names) > 0 {
		request += ", headers " + strings.Join(names, " ")
	}
	if body != "" {
		request += ", body " + snippet(body, 300)
	}

	timeout := w.Timeout.D()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	attempts := 1 + w.Retries
	wait := e.backoff
	var last error
	for attempt := 1; attempt <= attempts; attempt++ {
		code, answer, retryAfter, err := e.webhookAttempt(ctx, w.Method, u, []byte(body), headers, secret, w.SignatureHeader, idem, rc, timeout)
		switch {
		case err == nil && code >= 200 && code < 300:
			return request, fmt.Sprintf("HTTP %d after %d attempt(s): %s", code, attempt, snippet(answer, 300)), nil
		case err != nil:
			last = err
		default:
			last = fmt.Errorf("HTTP %d: %s", code, snippet(answer, 300))
			if !retryable(code) {
				return request, fmt.Sprintf("HTTP %d after %d attempt(s): %s", code, attempt, snippet(answer, 300)),
					fmt.Errorf("webhook %s answered %d, which is not worth retrying: %s", redactURL(pu), code, snippet(answer, 200))
			}
		}
		if attempt == attempts || ctx.Err() != nil {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		e.log.Warn("webhook attempt failed; retrying", "step", sp.Index, "url", redactURL(pu), "attempt", attempt, "retry_in", d.String(), "err", last)
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		wait = min(wait*2, 30*time.Second)
	}
	if ctx.Err() != nil {
		return request, "", ctx.Err()
	}
	return request, "", fmt.Errorf("webhook %s failed after %d attempt(s): %w", redactURL(pu), attempts, last)
}

func (e *Engine) webhookAttempt(ctx context.Context, method, u string, body []byte, headers map[string]string, secret, sigHeader, idem string, rc *runCtx, timeout time.Duration) (int, string, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, fmt.Errorf("building the request: %w", unwrapURLError(err))
	}
	if len(body) > 0 {
		ct := "text/plain; charset=utf-8"
		if t := bytes.TrimSpace(body); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("User-Agent", "nsguard-failover")
	req.Header.Set("Idempotency-Key", idem)
	req.Header.Set("X-Nsguard-Playbook", rc.plan.Playbook)
	req.Header.Set("X-Nsguard-Run", fmt.Sprint(rc.runID))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if secret != "" {
		req.Header.Set(sigHeader, Sign(secret, body))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", 0, unwrapURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse+1))
	if len(b) > maxWebhookResponse {
		b = b[:maxWebhookResponse]
	}
	if err != nil && len(b) == 0 {
		return resp.StatusCode, "", 0, fmt.Errorf("reading the answer: %w", unwrapURLError(err))
	}
	return resp.StatusCode, string(b), min(notify.ParseRetryAfter(resp.Header.Get("Retry-After"), e.now()), time.Minute), nil
}

// unwrapURLError drops net/http's "Post \"URL\": " prefix, which would put
// a credential in the URL into the log and the audit trail.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
