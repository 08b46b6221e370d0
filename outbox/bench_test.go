package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/notify"
	"github.com/nsguard/nsguard/notify/slack"
	"github.com/nsguard/nsguard/notify/slack/slackrecorder"
)

type nopReceiver struct{}

func (nopReceiver) Name() string                                          { return "nop" }
func (nopReceiver) Notify(context.Context, *notify.Message) (bool, error) { return false, nil }

// BenchmarkFlush1000 delivers 1,000 messages (500 threads of two) per op:
// "nop" is the outbox and store alone, "slacktest" adds slack-go and HTTP
// to a local fake Slack.
func BenchmarkFlush1000(b *testing.B) {
	for _, name := range []string{"nop", "slacktest"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var rcv notify.Receiver = nopReceiver{}
			if name == "slacktest" {
				rec := slackrecorder.New()
				defer rec.Close()
				if rcv, err = slack.New(slack.Options{Token: "xoxb-bench", APIURL: rec.URL(), Channel: "#c", Threads: st}); err != nil {
					b.Fatal(err)
				}
			}
			d, err := New(st, Options{Receiver: rcv, BatchSize: 200})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for b.Loop() {
				b.StopTimer()
				for i := range 1000 {
					kind := notify.KindOpen
					if i%2 == 1 {
						kind = notify.KindRepeat
					}
					m := &notify.Message{Kind: kind, Domain: "d.example", Severity: finding.Critical, Title: "t", At: t0, ThreadKey: fmt.Sprintf("incident:%d-%d", n, i/2), Channel: "#c"}
					if _, err := Enqueue(ctx, st, m); err != nil {
						b.Fatal(err)
					}
				}
				n++
				b.StartTimer()
				res, err := d.Flush(ctx)
				if err != nil || res.Delivered != 1000 {
					b.Fatalf("flush = %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
