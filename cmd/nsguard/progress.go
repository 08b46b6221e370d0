package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line bar on a terminal and nothing when the output
// is piped, so scripts and logs stay clean. It redraws on a clock as well
// as on each finished item, so a run stuck on one slow domain still shows
// it is alive and for how long. Short runs of a few items draw nothing
// unless they take a while.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	on    bool
	// delay is how long a small run (fewer than 20 items) stays silent.
	delay time.Duration
	start time.Time
	last  time.Time
	n     int
	total int
	drawn bool
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

const (
	progressDelay = time.Second
	progressTick  = 250 * time.Millisecond
)

func newProgress(w io.Writer, label string) *progress {
	return startProgress(w, label, isTerminal(w), progressDelay, progressTick)
}

func startProgress(w io.Writer, label string, on bool, delay, tick time.Duration) *progress {
	p := &progress{w: w, label: label, on: on, delay: delay, start: time.Now(), stop: make(chan struct{})}
	if on {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
					p.mu.Lock()
					p.draw(true)
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

// expect sets the number of items before any is done.
func (p *progress) expect(total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
}

func (p *progress) update(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.total = done, total
	p.draw(false)
}

// draw writes the line; called with mu held. force is the clock's redraw.
func (p *progress) draw(force bool) {
	if !p.on {
		return
	}
	elapsed := time.Since(p.start)
	if p.total < 20 && elapsed < p.delay {
		return
	}
	if !force && time.Since(p.last) < 100*time.Millisecond && p.n < p.total {
		return
	}
	p.last = time.Now()
	if p.total == 0 { // nothing known yet but the time
		fmt.Fprintf(p.w, "\r%s …  %s\x1b[K", p.label, elapsed.Truncate(time.Second))
		p.drawn = true
		return
	}
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = width * min(p.n, p.total) / p.total
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d  %s\x1b[K", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		p.n, p.total, elapsed.Truncate(time.Second))
	p.drawn = true
}

// done stops the clock and clears the line.
func (p *progress) done() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.drawn {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
	})
}
