package demo

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

// slackSink is a local stand-in for Slack: slack-go's test server behind
// the real bot-token receiver, printing each message in the terminal as it
// arrives, threads indented.
type slackSink struct {
	rec     *slackrecorder.Recorder
	out     io.Writer
	mu      sync.Mutex
	printed int
	edits   int
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

// waitEdits waits until n edits of pages have arrived and prints them.
func (s *slackSink) waitEdits(ctx context.Context, n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil && len(s.rec.Updates()) < n {
		time.Sleep(50 * time.Millisecond)
	}
	s.flush()
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
		// One write: the story's lines never land inside a message.
		io.WriteString(s.out, indentLines(slackrecorder.Box(posts[s.printed])))
	}
	// chat.update: the page was edited in place (acknowledged, resolved).
	edits := s.rec.Updates()
	for ; s.edits < len(edits); s.edits++ {
		io.WriteString(s.out, indentLines(slackrecorder.EditLine(edits[s.edits])))
	}
}

func indentLines(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n   ") + "\n"
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
