package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/internal/notify/slack/slackrecorder"
)

// slackSink is a local stand-in for Slack: slack-go's test server behind
// the real bot-token receiver, printing each message in the terminal as it
// arrives, threads indented.
type slackSink struct {
	rec     *slackrecorder.Recorder
	out     io.Writer
	mu      sync.Mutex
	printed int
	roots   map[string]bool
	stop    chan struct{}
	done    chan struct{}
}

func newSlackSink(out io.Writer) *slackSink {
	s := &slackSink{rec: slackrecorder.New(), out: out, roots: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *slackSink) URL() string { return s.rec.URL() }

func (s *slackSink) Close() {
	close(s.stop)
	<-s.done
	s.flush()
	s.rec.Close()
}

func (s *slackSink) loop() {
	defer close(s.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.flush()
		}
	}
}

// count returns how many messages have arrived.
func (s *slackSink) count() int { return len(s.rec.Posts()) }

// waitFor waits until a message satisfying match has arrived.
func (s *slackSink) waitFor(ctx context.Context, d time.Duration, match func(text string) bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for i, p := range s.rec.Posts() {
			if match(p.Text + string(p.Blocks)) {
				s.flushed(i + 1)
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// flushed prints every message that has arrived — the first n among
// them — before the story goes on, so its next line comes after them.
func (s *slackSink) flushed(n int) {
	for {
		s.flush()
		s.mu.Lock()
		done := s.printed >= n
		s.mu.Unlock()
		if done {
			return
		}
	}
}

func (s *slackSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	posts := s.rec.Posts()
	for ; s.printed < len(posts); s.printed++ {
		p := posts[s.printed]
		var b strings.Builder
		head := fmt.Sprintf("   ┌─ Slack #%s", strings.TrimPrefix(p.Channel, "#"))
		if p.ThreadTS != "" {
			head = "   ├─ reply in thread"
			if p.Broadcast {
				head += " (also sent to the channel)"
			}
		}
		b.WriteString(head + "\n")
		for _, line := range renderBlocks(p.Blocks, p.Text) {
			b.WriteString("   │ " + line + "\n")
		}
		b.WriteString("   └─\n")
		io.WriteString(s.out, b.String()) // one write: the story's lines never land inside a message
	}
}

// lockedWriter serialises the story and the Slack printer on one terminal.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var (
	slackDate = regexp.MustCompile(`<!date\^[^|>]*\|([^>]*)>`)
	slackLink = regexp.MustCompile(`<([^|>]+)\|([^>]+)>`)
)

// renderBlocks turns Block Kit JSON into terminal lines.
func renderBlocks(raw json.RawMessage, fallback string) []string {
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
		Elements []struct {
			Text string `json:"text"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &blocks); err != nil || len(blocks) == 0 {
		return []string{fallback}
	}
	var out []string
	add := func(t string) {
		t = slackDate.ReplaceAllString(t, "$1")
		t = slackLink.ReplaceAllString(t, "$2")
		t = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "```", "", "*", "").Replace(t)
		for _, l := range strings.Split(t, "\n") {
			if strings.TrimSpace(l) != "" {
				out = append(out, l)
			}
		}
	}
	for _, b := range blocks {
		switch b.Type {
		case "divider":
			out = append(out, strings.Repeat("─", 40))
		case "context":
			for _, e := range b.Elements {
				add(e.Text)
			}
		default:
			if b.Text != nil {
				add(b.Text.Text)
			}
		}
	}
	return out
}
