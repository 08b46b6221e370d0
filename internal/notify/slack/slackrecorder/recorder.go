// Package slackrecorder is a fake Slack for tests: slack-go's slacktest
// server with a chat.postMessage handler that records every message and can
// be told to fail (HTTP 500, 429 with Retry-After, Slack error codes).
// nsguard's own tests use it, and so can the daemon's end-to-end tests:
// point alerts.slack.api_url at URL().
package slackrecorder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

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
	responder Responder
	channels  map[string]string
	ts        int
}

// New starts a fake Slack on 127.0.0.1; Close it when done.
func New() *Recorder {
	r := &Recorder{channels: map[string]string{}}
	r.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", r.postMessage)
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

// Calls is the number of chat.postMessage calls, failed ones included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *Recorder) postMessage(w http.ResponseWriter, req *http.Request) {
	// chat.postMessage bodies are small; cap what a test server reads too.
	req.Body = http.MaxBytesReader(w, req.Body, 1<<20)
	if err := req.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.calls++
	n := r.calls
	resp := r.responder
	r.mu.Unlock()

	channel := req.PostForm.Get("channel")
	var rep Reply
	if resp != nil {
		rep = resp(n, channel)
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		http.Error(w, http.StatusText(rep.Status), rep.Status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if rep.Error != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": rep.Error})
		return
	}

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
	ts := "1700000000." + fmt.Sprintf("%06d", r.ts)
	b, _ := strconv.ParseBool(req.PostForm.Get("reply_broadcast"))
	r.posts = append(r.posts, Post{
		N: n, Token: req.PostForm.Get("token"), Channel: channel, ChannelID: id, TS: ts,
		ThreadTS: req.PostForm.Get("thread_ts"), Broadcast: b,
		Text: req.PostForm.Get("text"), Blocks: json.RawMessage(req.PostForm.Get("blocks")),
	})
	r.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": id, "ts": ts, "message": map[string]any{"ts": ts}})
}
