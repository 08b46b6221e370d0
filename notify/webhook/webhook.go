// Package webhook delivers nsguard messages to a Slack incoming webhook.
// An incoming webhook cannot thread (it never says where its message
// landed), so every message stands alone and says which incident it
// belongs to.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/notify"
)

// Options configure a Receiver.
type Options struct {
	// URL is the incoming webhook URL: itself a credential.
	URL        string
	Logger     *slog.Logger
	HTTPClient *http.Client
	// Now is used to read an HTTP-date Retry-After; defaults to time.Now.
	Now func() time.Time
}

// Receiver posts to an incoming webhook.
type Receiver struct {
	url    string
	client *http.Client
	logger *slog.Logger
	now    func() time.Time
}

var _ notify.Receiver = (*Receiver)(nil)

// maxResponse bounds what is read of the webhook's answer ("ok", or a short
// error code).
const maxResponse = 64 << 10

// New builds a Receiver. The error never contains the URL.
func New(o Options) (*Receiver, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("webhook: the webhook URL is not an http(s) URL")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Receiver{url: o.URL, client: o.HTTPClient, logger: o.Logger.With("component", "webhook"), now: o.Now}, nil
}

// FromConfig builds a Receiver from alerts.slack.webhook_url_file or
// webhook_url_env.
func FromConfig(cfg config.Slack, logger *slog.Logger) (*Receiver, error) {
	u, err := notify.ReadSecret(cfg.WebhookURLFile, cfg.WebhookURLEnv)
	if err != nil {
		return nil, fmt.Errorf("slack webhook URL: %w", err)
	}
	return New(Options{URL: u, Logger: logger})
}

// Name implements notify.Receiver.
func (r *Receiver) Name() string { return "webhook" }

// Notify implements notify.Receiver.
func (r *Receiver) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	if m.Kind == notify.KindRootUpdate {
		// A webhook cannot edit what it posted; the reply that came with
		// the state change (acknowledged, resolved) says it.
		return false, nil
	}
	text := notify.Text(m)
	if m.IncidentID != 0 && m.Kind != notify.KindOpen {
		// No threads: tie the message to its incident in words.
		text = fmt.Sprintf("%s (incident #%d)", text, m.IncidentID)
	}
	blocks := slackapi.Blocks{BlockSet: notify.Blocks(m)}
	f := false
	body, err := json.Marshal(slackapi.WebhookMessage{Text: text, Blocks: &blocks, UnfurlLinks: &f, UnfurlMedia: &f})
	if err != nil {
		return false, &notify.Error{Receiver: "webhook", Reason: "encode", Detail: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return false, &notify.Error{Receiver: "webhook", Reason: "bad request", Detail: r.redact(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		// *url.Error spells out the URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) && ue.Err != nil {
			err = ue.Err
		}
		reason := "network"
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			reason = "timeout"
		}
		return true, &notify.Error{Receiver: "webhook", Reason: reason, Retry: true, Detail: r.redact(err.Error())}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	code := strings.TrimSpace(string(answer))
	if len(code) > 200 {
		code = code[:200]
	}
	code = r.redact(code)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := notify.ParseRetryAfter(resp.Header.Get("Retry-After"), r.now())
		if wait <= 0 {
			wait = time.Second
		}
		return true, &notify.Error{Receiver: "webhook", Reason: "rate limited", Retry: true, RetryAfter: wait}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return true, &notify.Error{Receiver: "webhook", Reason: "http " + strconv.Itoa(resp.StatusCode), Retry: true, Detail: code}
	}
	// 400 invalid_payload, 403 action_prohibited, 404 no_service,
	// 410 channel_is_archived: a retry gives the same answer.
	reason := "http " + strconv.Itoa(resp.StatusCode)
	if code != "" && !strings.ContainsAny(code, " <\n") {
		reason = code
	}
	return false, &notify.Error{Receiver: "webhook", Reason: reason, Detail: "http " + strconv.Itoa(resp.StatusCode)}
}

// redact removes the URL, and its path alone (the secret part), from s.
func (r *Receiver) redact(s string) string {
	secrets := []string{r.url}
	if u, err := url.Parse(r.url); err == nil && len(u.Path) > 1 {
		secrets = append(secrets, u.Path, url.PathEscape(u.Path))
	}
	return notify.Redact(s, secrets...)
}
