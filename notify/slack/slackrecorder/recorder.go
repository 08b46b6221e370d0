// Package slackrecorder is a fake Slack for tests: slack-go's slacktest
// server with chat.postMessage and chat.update handlers that record every
// message and edit and can be told to fail (HTTP 500, 429 with Retry-After,
// Slack error codes), and a chat.getPermalink that answers a stable link.
// nsguard's own tests use it, and so can the daemon's end-to-end tests:
// point alerts.slack.api_url at URL().
package slackrecorder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// Post is one recorded chat.postMessage call that Slack accepted.
type Post struct {
	// N is the 1-based index among all calls, failed ones included.
	N       int
	Token   string
	Channel string
	// ChannelID is the ID the fake answered with.
	ChannelID string
	TS        string
	ThreadTS  string
	Broadcast bool
	Text      string
	// Blocks is the raw Block Kit JSON.
	Blocks json.RawMessage
	// Metadata is the raw message metadata JSON ("" when none).
	Metadata string
}

// Update is one recorded chat.update call that Slack accepted: the message
// at Channel/TS now reads Text and Blocks.
type Update struct {
	N       int
	Channel string
	TS      string
	Text    string
	Blocks  json.RawMessage
}

// Reply is what the fake answers a call with; the zero Reply accepts.
type Reply struct {
	// Status is an HTTP status; 0 means 200.
	Status int
	// RetryAfter sets the Retry-After header (seconds or HTTP-date).
	RetryAfter string
	// Error makes Slack answer {"ok":false,"error":Error} with status 200.
	Error string
}

// Responder decides the reply to call n (1-based) for a channel.
type Responder func(n int, channel string) Reply

// Recorder is a running fake Slack.
type Recorder struct {
	srv *slacktest.Server

	mu        sync.Mutex
	calls     int
	posts     []Post
	updates   []Update
	known     map[string]bool // channel ID + ts of every accepted post
	kept      []Post          // every accepted post, whatever Reset did
	epoch     int64           // the seconds part of every ts
	responder Responder
	channels  map[string]string
	ts        int
}

// New starts a fake Slack on 127.0.0.1; Close it when done.
func New() *Recorder {
	r := &Recorder{channels: map[string]string{}, known: map[string]bool{}, epoch: time.Now().Unix()}
	r.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", r.postMessage)
		c.Handle("/chat.update", r.update)
		c.Handle("/chat.getPermalink", r.permalink)
		c.Handle("/conversations.replies", r.replies)
		c.Handle("/conversations.history", r.history)
		c.Handle("/conversations.list", r.list)
	})
	r.srv.Start()
	return r
}

// URL is the API URL to give alerts.slack.api_url.
func (r *Recorder) URL() string { return r.srv.GetAPIURL() }

// Close stops the server.
func (r *Recorder) Close() { r.srv.Stop() }

// SetResponder installs f (nil: accept everything).
func (r *Recorder) SetResponder(f Responder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responder = f
}

// Posts returns the accepted messages in arrival order.
func (r *Recorder) Posts() []Post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Post(nil), r.posts...)
}

// Reset forgets the posts and edits recorded so far (threads and channel
// IDs are kept, so replies still find their thread).
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts, r.updates = nil, nil
}

// Updates returns the accepted edits in arrival order.
func (r *Recorder) Updates() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Update(nil), r.updates...)
}

// Permalink is the link chat.getPermalink answers for a message.
func Permalink(channelID, ts string) string {
	return fmt.Sprintf("https://lab.slack.example/archives/%s/p%s", channelID, strings.ReplaceAll(ts, ".", ""))
}

// Calls is the number of chat.postMessage and chat.update calls, failed
// ones included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// answer runs the responder for a call and writes a failure if it asks
// for one; ok reports whether the call goes on.
func (r *Recorder) answer(w http.ResponseWriter, req *http.Request) (n int, ok bool) {
	// Slack's bodies are small; cap what a test server reads too.
	req.Body = http.MaxBytesReader(w, req.Body, 1<<20)
	if err := req.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return 0, false
	}
	r.mu.Lock()
	r.calls++
	n = r.calls
	resp := r.responder
	r.mu.Unlock()

	var rep Reply
	if resp != nil {
		rep = resp(n, req.PostForm.Get("channel"))
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		http.Error(w, http.StatusText(rep.Status), rep.Status)
		return n, false
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.Error != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": rep.Error})
		return n, false
	}
	return n, true
}

func (r *Recorder) update(w http.ResponseWriter, req *http.Request) {
	n, ok := r.answer(w, req)
	if !ok {
		return
	}
	channel, ts := req.PostForm.Get("channel"), req.PostForm.Get("ts")
	r.mu.Lock()
	found := r.known[channel+"/"+ts]
	if found {
		r.updates = append(r.updates, Update{N: n, Channel: channel, TS: ts, Text: req.PostForm.Get("text"), Blocks: json.RawMessage(req.PostForm.Get("blocks"))})
	}
	r.mu.Unlock()
	if !found {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": channel, "ts": ts})
}

// message renders a post as Slack's API returns messages.
func (r *Recorder) message(p Post) map[string]any {
	m := map[string]any{"type": "message", "ts": p.TS, "text": p.Text}
	if p.ThreadTS != "" {
		m["thread_ts"] = p.ThreadTS
	}
	if p.Metadata != "" {
		var md any
		if json.Unmarshal([]byte(p.Metadata), &md) == nil {
			m["metadata"] = md
		}
	}
	return m
}

// replies answers conversations.replies: the thread's first message and
// its replies, with metadata.
func (r *Recorder) replies(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	channel, ts := req.Form.Get("channel"), req.Form.Get("ts")
	r.mu.Lock()
	var msgs []map[string]any
	for _, p := range r.kept {
		if p.ChannelID == channel && (p.TS == ts || p.ThreadTS == ts) {
			msgs = append(msgs, r.message(p))
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if len(msgs) == 0 {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "thread_not_found"})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false, "response_metadata": map[string]any{"next_cursor": ""}})
}

// history answers conversations.history: the channel's messages (thread
// roots and broadcast replies), newest first.
func (r *Recorder) history(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	channel, oldest := req.Form.Get("channel"), req.Form.Get("oldest")
	r.mu.Lock()
	var msgs []map[string]any
	for i := len(r.kept) - 1; i >= 0; i-- {
		p := r.kept[i]
		if p.ChannelID == channel && (p.ThreadTS == "" || p.Broadcast) && (oldest == "" || p.TS >= oldest) {
			msgs = append(msgs, r.message(p))
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false, "response_metadata": map[string]any{"next_cursor": ""}})
}

// list answers conversations.list with the channels posted to so far.
func (r *Recorder) list(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	var chans []map[string]any
	for name, id := range r.channels {
		if strings.HasPrefix(name, "#") {
			chans = append(chans, map[string]any{"id": id, "name": strings.TrimPrefix(name, "#"), "is_channel": true})
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channels": chans, "response_metadata": map[string]any{"next_cursor": ""}})
}

func (r *Recorder) permalink(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	q := req.Form
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": q.Get("channel"), "permalink": Permalink(q.Get("channel"), q.Get("message_ts"))})
}

func (r *Recorder) postMessage(w http.ResponseWriter, req *http.Request) {
	n, ok := r.answer(w, req)
	if !ok {
		return
	}
	channel := req.PostForm.Get("channel")

	r.mu.Lock()
	id, ok := r.channels[channel]
	if !ok {
		// Slack answers with channel IDs; replies then use the ID.
		if len(channel) > 0 && channel[0] == 'C' {
			id = channel
		} else {
			id = fmt.Sprintf("C%08d", len(r.channels)+1)
		}
		r.channels[channel] = id
		r.channels[id] = id
	}
	r.ts++
	// Slack's ts is the post's Unix time with a sequence: real enough for
	// conversations.history's "oldest", unique and increasing.
	ts := fmt.Sprintf("%d.%06d", r.epoch, r.ts)
	b, _ := strconv.ParseBool(req.PostForm.Get("reply_broadcast"))
	r.known[id+"/"+ts] = true
	p := Post{
		N: n, Token: req.PostForm.Get("token"), Channel: channel, ChannelID: id, TS: ts,
		ThreadTS: req.PostForm.Get("thread_ts"), Broadcast: b,
		Text: req.PostForm.Get("text"), Blocks: json.RawMessage(req.PostForm.Get("blocks")), Metadata: req.PostForm.Get("metadata"),
	}
	r.posts = append(r.posts, p)
	r.kept = append(r.kept, p)
	r.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": id, "ts": ts, "message": map[string]any{"ts": ts}})
}
