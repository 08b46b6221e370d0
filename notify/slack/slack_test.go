package slack

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

const token = "xoxb-42-SECRETtoken"

func setup(t *testing.T) (*Receiver, *slackrecorder.Recorder, *store.SQLite) {
	t.Helper()
	rec := slackrecorder.New()
	t.Cleanup(rec.Close)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := New(Options{Token: token, APIURL: rec.URL(), Channel: "#dns-oncall", Threads: st})
	if err != nil {
		t.Fatal(err)
	}
	return r, rec, st
}

func message(kind notify.Kind, thread string) *notify.Message {
	return &notify.Message{Kind: kind, Domain: "shop-example.com", Severity: finding.Critical, Title: string(kind), ThreadKey: thread,
		Broadcast: kind != notify.KindOpen, At: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}
}

func TestThreads(t *testing.T) {
	r, rec, st := setup(t)
	ctx := context.Background()
	for _, m := range []*notify.Message{message(notify.KindOpen, "incident:1"), message(notify.KindRepeat, "incident:1"), message(notify.KindOpen, "")} {
		if retry, err := r.Notify(ctx, m); err != nil || retry {
			t.Fatalf("notify %s: %v, %v", m.Kind, retry, err)
		}
	}
	posts := rec.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d posts", len(posts))
	}
	root, reply, single := posts[0], posts[1], posts[2]
	if root.Channel != "#dns-oncall" || root.ThreadTS != "" || root.Token != token {
		t.Fatalf("root = %+v", root)
	}
	if reply.Channel != root.ChannelID || reply.ThreadTS != root.TS || !reply.Broadcast {
		t.Fatalf("reply = %+v, want a broadcast reply to %s in %s", reply, root.TS, root.ChannelID)
	}
	if single.ThreadTS != "" {
		t.Fatalf("message without thread key threaded: %+v", single)
	}
	th, err := st.SlackThread(ctx, "incident:1")
	if err != nil || th.TS != root.TS || th.Channel != root.ChannelID {
		t.Fatalf("stored thread = %+v, %v", th, err)
	}
	if !strings.Contains(string(root.Blocks), `"type":"header"`) || !strings.Contains(root.Text, "shop-example.com") {
		t.Fatalf("root lacks blocks or text: %s / %s", root.Text, root.Blocks)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name       string
		reply      slackrecorder.Reply
		wantRetry  bool
		wantReason string
		wantWait   func(time.Duration) bool
	}{
		{"server error", slackrecorder.Reply{Status: 500}, true, "http 500", nil},
		{"bad gateway", slackrecorder.Reply{Status: 502}, true, "http 502", nil},
		{"429 seconds", slackrecorder.Reply{Status: 429, RetryAfter: "12"}, true, "rate limited", func(d time.Duration) bool { return d == 12*time.Second }},
		{"429 http-date", slackrecorder.Reply{Status: 429, RetryAfter: time.Now().Add(40 * time.Second).UTC().Format(http.TimeFormat)}, true, "rate limited",
			func(d time.Duration) bool { return d >= 35*time.Second && d <= 41*time.Second }},
		{"429 no header", slackrecorder.Reply{Status: 429}, true, "rate limited", func(d time.Duration) bool { return d == time.Second }},
		{"ratelimited code", slackrecorder.Reply{Error: "ratelimited"}, true, "ratelimited", nil},
		{"internal_error", slackrecorder.Reply{Error: "internal_error"}, true, "internal_error", nil},
		{"channel_not_found", slackrecorder.Reply{Error: "channel_not_found"}, false, "channel_not_found", nil},
		{"invalid_auth", slackrecorder.Reply{Error: "invalid_auth"}, false, "invalid_auth", nil},
		{"not_in_channel", slackrecorder.Reply{Error: "not_in_channel"}, false, "not_in_channel", nil},
		{"forbidden", slackrecorder.Reply{Status: 403}, false, "http 403", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rec, _ := setup(t)
			rec.SetResponder(func(int, string) slackrecorder.Reply { return tc.reply })
			retry, err := r.Notify(context.Background(), message(notify.KindOpen, "incident:1"))
			var ne *notify.Error
			if !errors.As(err, &ne) {
				t.Fatalf("err = %v, want *notify.Error", err)
			}
			if retry != tc.wantRetry || ne.Retry != tc.wantRetry || ne.Reason != tc.wantReason {
				t.Fatalf("retry = %v, err = %v; want retry %v, reason %q", retry, err, tc.wantRetry, tc.wantReason)
			}
			if tc.wantWait != nil && !tc.wantWait(ne.RetryAfter) {
				t.Fatalf("RetryAfter = %s", ne.RetryAfter)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}

func TestNoChannel(t *testing.T) {
	rec := slackrecorder.New()
	defer rec.Close()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := New(Options{Token: token, APIURL: rec.URL(), Threads: st})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := r.Notify(context.Background(), message(notify.KindOpen, "incident:1"))
	if retry || err == nil || rec.Calls() != 0 {
		t.Fatalf("retry = %v, err = %v, calls = %d", retry, err, rec.Calls())
	}
}

// A root update edits the thread's first message; one for a thread that
// never started, or a first message Slack no longer has, is dropped rather
// than retried for ever; an escalation's related incident becomes a link.
func TestRootUpdatesAndLinks(t *testing.T) {
	r, rec, st := setup(t)
	ctx := context.Background()
	if _, err := r.Notify(ctx, message(notify.KindOpen, "incident:1")); err != nil {
		t.Fatal(err)
	}
	root := rec.Posts()[0]
	up := message(notify.KindRootUpdate, "incident:1")
	up.State, up.EndedAt, up.Since = "resolved", up.At.Add(time.Hour), up.At
	if retry, err := r.Notify(ctx, up); err != nil || retry {
		t.Fatalf("root update: %v, %v", retry, err)
	}
	ups := rec.Updates()
	if len(ups) != 1 || ups[0].TS != root.TS || ups[0].Channel != root.ChannelID || !strings.Contains(string(ups[0].Blocks), "RESOLVED") {
		t.Fatalf("updates = %+v", ups)
	}
	if len(rec.Posts()) != 1 {
		t.Fatalf("a root update posted a message")
	}
	for _, key := range []string{"incident:404", "incident:gone"} {
		if key == "incident:gone" {
			if err := st.PutSlackThread(ctx, store.SlackThread{Key: key, Channel: root.ChannelID, TS: "1.000", CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if retry, err := r.Notify(ctx, message(notify.KindRootUpdate, key)); err != nil || retry {
			t.Errorf("update of %s: %v, %v (want dropped)", key, retry, err)
		}
	}

	page := message(notify.KindOpen, "incident:2")
	page.Related = []notify.Related{{IncidentID: 1, Severity: finding.Warning, Title: "lame", ThreadKey: "incident:1"}}
	if _, err := r.Notify(ctx, page); err != nil {
		t.Fatal(err)
	}
	link := slackrecorder.Permalink(root.ChannelID, root.TS)
	if b := string(rec.Posts()[1].Blocks); !strings.Contains(b, link) {
		t.Fatalf("escalation page does not link %s:\n%s", link, b)
	}
}
