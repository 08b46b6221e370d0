// Package slack delivers nsguard messages with a Slack bot token through
// chat.postMessage (slack-go), as Block Kit, one thread per thread key: the
// first message of a key starts the thread and its ts is remembered in the
// store; later messages reply in it, and a root update rewrites the first
// message in place (chat.update) to show the incident resolved or taken.
package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
)

// ThreadStore remembers where each thread lives; *store.SQLite is one.
type ThreadStore interface {
	SlackThread(ctx context.Context, key string) (store.SlackThread, error)
	PutSlackThread(ctx context.Context, t store.SlackThread) error
}

// Options configure a Receiver.
type Options struct {
	// Token is the bot token (xoxb-…). Required.
	Token string
	// APIURL replaces https://slack.com/api/ (a proxy, slacktest).
	APIURL string
	// Channel is used when a message names none.
	Channel string
	Threads ThreadStore
	Logger  *slog.Logger
	// HTTPClient defaults to one with a 30s timeout.
	HTTPClient *http.Client
	// Now stamps new threads; defaults to time.Now.
	Now func() time.Time
}

// Receiver posts messages with a bot token.
type Receiver struct {
	api     *slackapi.Client
	token   string
	apiURL  string
	channel string
	threads ThreadStore
	logger  *slog.Logger
	now     func() time.Time
}

var _ notify.Receiver = (*Receiver)(nil)

// maxResponse bounds what is read of a Slack response: chat.postMessage
// answers with a few kilobytes; a proxy's error page must not be slurped.
const maxResponse = 1 << 20

// New builds a Receiver.
func New(o Options) (*Receiver, error) {
	if o.Token == "" {
		return nil, errors.New("slack: empty bot token")
	}
	if o.Threads == nil {
		return nil, errors.New("slack: no thread store")
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
	opts := []slackapi.Option{
		slackapi.OptionHTTPClient(boundedClient{o.HTTPClient}),
		// slack-go logs only in debug mode, which stays off; discard anyway
		// so no request dump can ever reach stderr with the token in it.
		slackapi.OptionLog(log.New(io.Discard, "", 0)),
	}
	if o.APIURL != "" {
		u := o.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slackapi.OptionAPIURL(u))
	}
	return &Receiver{
		api:     slackapi.New(o.Token, opts...),
		token:   o.Token,
		apiURL:  o.APIURL,
		channel: o.Channel,
		threads: o.Threads,
		logger:  o.Logger.With("component", "slack"),
		now:     o.Now,
	}, nil
}

// FromConfig builds a Receiver from alerts.slack, reading the token from
// token_file or token_env.
func FromConfig(cfg config.Slack, threads ThreadStore, logger *slog.Logger) (*Receiver, error) {
	tok, err := notify.ReadSecret(cfg.TokenFile, cfg.TokenEnv)
	if err != nil {
		return nil, fmt.Errorf("slack bot token: %w", err)
	}
	return New(Options{Token: tok, APIURL: cfg.APIURL, Channel: cfg.Channel, Threads: threads, Logger: logger})
}

// Name implements notify.Receiver.
func (r *Receiver) Name() string { return "slack" }

// Notify posts m: as the root of its thread when the thread is new, as a
// reply otherwise; a root update edits the thread's first message.
func (r *Receiver) Notify(ctx context.Context, m *notify.Message) (bool, error) {
	if m.Kind == notify.KindRootUpdate {
		return r.updateRoot(ctx, m)
	}
	r.linkRelated(ctx, m)
	channel := m.Channel
	if channel == "" {
		channel = r.channel
	}
	opts := []slackapi.MsgOption{
		slackapi.MsgOptionText(notify.Text(m), false),
		slackapi.MsgOptionBlocks(notify.Blocks(m)...),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
	if m.OutboxID != 0 {
		// The message's identity travels with it, so a sender taking over
		// from one that died can tell whether Slack already has it.
		opts = append(opts, slackapi.MsgOptionMetadata(slackapi.SlackMetadata{EventType: metadataType,
			EventPayload: map[string]any{"outbox_id": strconv.FormatInt(m.OutboxID, 10)}}))
	}
	root := false
	threadTS := ""
	if m.ThreadKey != "" {
		th, err := r.threads.SlackThread(ctx, m.ThreadKey)
		switch {
		case err == nil:
			// Replies go where the thread is, by the channel ID Slack gave
			// back, whatever the routing says today.
			channel, threadTS = th.Channel, th.TS
			opts = append(opts, slackapi.MsgOptionTS(th.TS))
			if m.Broadcast {
				opts = append(opts, slackapi.MsgOptionBroadcast())
			}
		case errors.Is(err, store.ErrNotFound):
			root = true
		default:
			return true, &notify.Error{Receiver: "slack", Reason: "thread lookup", Retry: true, Detail: err.Error()}
		}
	}
	if channel == "" {
		return false, &notify.Error{Receiver: "slack", Reason: "no channel", Detail: "set alerts.slack.channel"}
	}
	if m.MaybeSent && m.OutboxID != 0 {
		if ch, ts, found := r.alreadySent(ctx, m, channel, threadTS); found {
			r.logger.Info("Slack already has this message (its sender died before recording it): not sending it again",
				"id", m.OutboxID, "thread", m.ThreadKey)
			if root {
				r.rememberThread(ctx, m.ThreadKey, ch, ts)
			}
			return false, nil
		}
	}
	ch, ts, err := r.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		e := r.classify(err)
		return e.Retry, e
	}
	if strings.HasPrefix(channel, "#") {
		// Remember the name's ID: looking a root message up needs it.
		r.rememberThread(ctx, channelKey(channel), ch, "")
	}
	if root {
		r.rememberThread(ctx, m.ThreadKey, ch, ts)
	}
	return false, nil
}

// metadataType tags nsguard's messages (Slack message metadata).
const metadataType = "nsguard_message"

// maxLookupPages bounds how much history a lookup reads.
const maxLookupPages = 5

func channelKey(name string) string { return "channel:" + name }

// maxChannelPages bounds a conversations.list walk (1,000 channels a page).
const maxChannelPages = 10

// channelID returns the ID of a channel name ("#dns-oncall"): remembered
// from an earlier post, or looked up (channels:read) and remembered.
func (r *Receiver) channelID(ctx context.Context, name string) (string, error) {
	if th, err := r.threads.SlackThread(ctx, channelKey(name)); err == nil {
		return th.Channel, nil
	}
	want := strings.TrimPrefix(name, "#")
	cursor := ""
	for range maxChannelPages {
		chans, next, err := r.api.GetConversationsContext(ctx, &slackapi.GetConversationsParameters{
			Cursor: cursor, ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"}})
		if err != nil {
			return "", r.classify(err)
		}
		for _, c := range chans {
			if c.Name == want {
				r.rememberThread(ctx, channelKey(name), c.ID, "")
				return c.ID, nil
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return "", fmt.Errorf("no channel named %s", name)
}

func (r *Receiver) rememberThread(ctx context.Context, key, ch, ts string) {
	if err := r.threads.PutSlackThread(ctx, store.SlackThread{Key: key, Channel: ch, TS: ts, CreatedAt: r.now()}); err != nil {
		if errors.Is(err, store.ErrFenced) {
			// A replica that stopped leading mid-send (paused, cut off):
			// the leader takes the message over and finds it in Slack,
			// thread and all.
			r.logger.Info("not remembering a slack thread: this replica no longer leads; the leader finds the message in Slack", "thread", key, "err", err)
			return
		}
		// The message is out; retrying would page twice. Later messages
		// of this thread will start a new one instead.
		r.logger.Error("cannot remember a slack thread; later replies will start a new thread", "thread", key, "err", err)
	}
}

// alreadySent looks in Slack for message m (by the outbox ID in its
// metadata): in its thread, or for a thread's first message, in the
// channel's recent history. Reading history needs the bot's
// channels:history (groups:history for private channels) scope; without
// it, or if the lookup fails, the message is sent (at least once beats
// never).
func (r *Receiver) alreadySent(ctx context.Context, m *notify.Message, channel, threadTS string) (ch, ts string, found bool) {
	want := strconv.FormatInt(m.OutboxID, 10)
	match := func(msgs []slackapi.Message) (string, bool) {
		for _, x := range msgs {
			if x.Metadata.EventType == metadataType && fmt.Sprint(x.Metadata.EventPayload["outbox_id"]) == want {
				return x.Timestamp, true
			}
		}
		return "", false
	}
	if threadTS == "" && strings.HasPrefix(channel, "#") {
		id, err := r.channelID(ctx, channel)
		if err != nil {
			r.logger.Warn("cannot find the channel's ID to look for a message a dead sender may have sent; sending it (it may arrive twice)",
				"channel", channel, "id", m.OutboxID, "err", err)
			return "", "", false
		}
		channel = id
	}
	oldest := ""
	if !m.At.IsZero() {
		oldest = strconv.FormatInt(m.At.Add(-time.Minute).Unix(), 10)
	}
	cursor := ""
	for range maxLookupPages {
		var msgs []slackapi.Message
		var next string
		var err error
		if threadTS != "" {
			msgs, _, next, err = r.api.GetConversationRepliesContext(ctx, &slackapi.GetConversationRepliesParameters{
				ChannelID: channel, Timestamp: threadTS, Cursor: cursor, Limit: 200, IncludeAllMetadata: true})
		} else {
			var h *slackapi.GetConversationHistoryResponse
			h, err = r.api.GetConversationHistoryContext(ctx, &slackapi.GetConversationHistoryParameters{
				ChannelID: channel, Cursor: cursor, Oldest: oldest, Limit: 200, IncludeAllMetadata: true})
			if h != nil {
				msgs, next = h.Messages, h.ResponseMetaData.NextCursor
			}
		}
		if err != nil {
			r.logger.Warn("cannot look in Slack for a message a dead sender may have sent; sending it (it may arrive twice)",
				"id", m.OutboxID, "err", r.classify(err))
			return "", "", false
		}
		if ts, ok := match(msgs); ok {
			return channel, ts, true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return "", "", false
}

// Errors chat.update gives for a root that cannot be edited any more (it
// was deleted, or the workspace forbids edits): the reply that came with
// the change already said it, so the update is dropped, not retried.
var uneditable = map[string]bool{
	"message_not_found":   true,
	"cant_update_message": true,
	"edit_window_closed":  true,
	"thread_not_found":    true,
}

// updateRoot rewrites the first message of m's thread.
func (r *Receiver) updateRoot(ctx context.Context, m *notify.Message) (bool, error) {
	th, err := r.threads.SlackThread(ctx, m.ThreadKey)
	if errors.Is(err, store.ErrNotFound) {
		r.logger.Warn("no thread to update: its first message was never posted", "thread", m.ThreadKey)
		return false, nil
	}
	if err != nil {
		return true, &notify.Error{Receiver: "slack", Reason: "thread lookup", Retry: true, Detail: err.Error()}
	}
	r.linkRelated(ctx, m)
	_, _, _, err = r.api.UpdateMessageContext(ctx, th.Channel, th.TS,
		slackapi.MsgOptionText(notify.Text(m), false), slackapi.MsgOptionBlocks(notify.Blocks(m)...))
	if err != nil {
		e := r.classify(err)
		if uneditable[e.Reason] {
			r.logger.Warn("cannot edit the thread's first message; the thread says it instead", "thread", m.ThreadKey, "reason", e.Reason)
			return false, nil
		}
		return e.Retry, e
	}
	return false, nil
}

// linkRelated turns the thread keys of related incidents into permalinks,
// so an escalation page links the older thread. A link that cannot be made
// leaves the incident named in words.
func (r *Receiver) linkRelated(ctx context.Context, m *notify.Message) {
	for i := range m.Related {
		rel := &m.Related[i]
		if rel.ThreadKey == "" || rel.URL != "" {
			continue
		}
		th, err := r.threads.SlackThread(ctx, rel.ThreadKey)
		if err != nil {
			continue
		}
		u, err := r.api.GetPermalinkContext(ctx, &slackapi.PermalinkParameters{Channel: th.Channel, Ts: th.TS})
		if err != nil {
			r.logger.Debug("no permalink for a related thread", "thread", rel.ThreadKey, "err", r.classify(err))
			continue
		}
		rel.URL = u
	}
}

// Slack API errors worth retrying (api.slack.com/methods/chat.postMessage);
// every other error code is a configuration problem a retry won't fix.
var retryableCodes = map[string]bool{
	"ratelimited":         true,
	"rate_limited":        true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"team_added_to_org":   true,
}

// classify turns a slack-go error into a notify.Error with the token and
// API URL removed from its text.
func (r *Receiver) classify(err error) *notify.Error {
	redact := func(s string) string { return notify.Redact(s, r.token, r.apiURL) }
	var rl *slackapi.RateLimitedError
	if errors.As(err, &rl) {
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		return &notify.Error{Receiver: "slack", Reason: "rate limited", Retry: true, RetryAfter: wait}
	}
	var sc slackapi.StatusCodeError
	if errors.As(err, &sc) {
		retry := sc.Code == http.StatusTooManyRequests || sc.Code == http.StatusRequestTimeout || sc.Code >= 500
		return &notify.Error{Receiver: "slack", Reason: "http " + strconv.Itoa(sc.Code), Retry: retry}
	}
	var se slackapi.SlackErrorResponse
	if errors.As(err, &se) {
		return &notify.Error{Receiver: "slack", Reason: redact(se.Err), Retry: retryableCodes[se.Err]}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &notify.Error{Receiver: "slack", Reason: "timeout", Retry: true, Detail: redact(err.Error())}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &notify.Error{Receiver: "slack", Reason: "network", Retry: true, Detail: redact(innerError(err).Error())}
	}
	// An unparsable answer (a proxy's HTML page) is most likely transient.
	return &notify.Error{Receiver: "slack", Reason: "bad response", Retry: true, Detail: redact(innerError(err).Error())}
}

// innerError drops net/http's "Post \"URL\": " wrapper: the URL may be a
// proxy with credentials in its path.
func innerError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// boundedClient caps response bodies, and rewrites a 429's Retry-After into
// the whole seconds slack-go parses (it fails on the HTTP-date form and
// would report a parse error instead of a rate limit).
type boundedClient struct{ c *http.Client }

func (b boundedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxResponse), resp.Body}
	if resp.StatusCode == http.StatusTooManyRequests {
		secs := int64(notify.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()) / time.Second)
		if secs < 1 {
			secs = 1
		}
		resp.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	return resp, nil
}
