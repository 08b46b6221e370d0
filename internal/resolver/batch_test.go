package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nsguard/nsguard/config"
)

// ExchangeAll's servers live on 127.78.5.0/24.

// TestExchangeAllAsksAtOnce: a batch's queries all leave before any answer
// is waited for. Three to a server that never answers time out side by
// side, one timeout a round (the first try, then the retry), not one after
// another; and a question to a live server, asked after them, gets its
// answer with its own round trip time, not theirs.
func TestExchangeAllAsksAtOnce(t *testing.T) {
	port := serve(t, "127.78.5.1", 0, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { w.WriteMsg(answerFor(r)) }))
	var deadQueries atomic.Int64
	startUDP(t, "127.78.5.2", port, func(*udpTestServer, *net.UDPAddr, *dns.Msg) { deadQueries.Add(1) })
	const timeout = 300 * time.Millisecond
	r, err := New(config.Resolver{Port: port, Timeout: config.Duration(timeout), Retries: 1, MaxQPSPerServer: 1e6, MaxConcurrency: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	live, dead := netip.MustParseAddrPort(fmt.Sprintf("127.78.5.1:%d", port)), netip.MustParseAddrPort(fmt.Sprintf("127.78.5.2:%d", port))
	asks := []Ask{{dead, tcpQuery(1)}, {dead, tcpQuery(2)}, {dead, tcpQuery(3)}, {live, tcpQuery(4)}}
	for i := range asks {
		asks[i].Query.Proto = UDP
	}
	start := time.Now()
	resps := r.NewCycle().ExchangeAll(context.Background(), asks)
	elapsed := time.Since(start)
	for i, resp := range resps[:3] {
		if !errors.Is(resp.Err, ErrTimeout) {
			t.Errorf("q%d to the silent server: %v, want a timeout", i+1, resp.Err)
		}
	}
	wantAnswer(t, resps[3], 4)
	if rtt := resps[3].RTT; rtt > timeout/3 {
		t.Errorf("the live server's answer has an RTT of %s: it is the wait for the silent server's, not its own", rtt)
	}
	// Two rounds of one timeout each: 600 ms. One query after another
	// (three queries, two tries each) would take 1.8 s.
	if elapsed < 2*timeout || elapsed > 2*timeout+timeout*3/2 {
		t.Errorf("the batch took %s, want about %s (two rounds of %s timeouts side by side)", elapsed, 2*timeout, timeout)
	}
	if n := deadQueries.Load(); n != 6 {
		t.Errorf("the silent server got %d queries, want 6 (three questions, each tried twice)", n)
	}
}

// TestExchangeAllAtMaxConcurrencyOne: with one query slot, batches from
// many goroutines at once all finish — none blocks on a slot while holding
// one — and the server never has two of their queries at a time.
func TestExchangeAllAtMaxConcurrencyOne(t *testing.T) {
	var active, most, total atomic.Int64
	port := serve(t, "127.78.5.3", 0, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		n := active.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		total.Add(1)
		time.Sleep(200 * time.Microsecond)
		active.Add(-1)
		w.WriteMsg(answerFor(r))
	}))
	r, err := New(config.Resolver{Port: port, Timeout: config.Duration(5 * time.Second), MaxQPSPerServer: 1e6, MaxConcurrency: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.5.3:%d", port))
	cycle := r.NewCycle()
	const goroutines, perBatch = 8, 5
	var wg sync.WaitGroup
	results := make([][]*Response, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			asks := make([]Ask, perBatch)
			for i := range asks {
				asks[i] = Ask{server, tcpQuery(g*perBatch + i)}
				if i%2 == 0 {
					asks[i].Query.Proto = UDP
				}
			}
			results[g] = cycle.ExchangeAll(context.Background(), asks)
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatal("batches at resolver.max_concurrency 1 did not finish: they wait for each other's slots")
	}
	for g, resps := range results {
		for i, resp := range resps {
			wantAnswer(t, resp, g*perBatch+i)
		}
	}
	if n := total.Load(); n != goroutines*perBatch {
		t.Errorf("the server got %d queries, want %d", n, goroutines*perBatch)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("the server had %d queries at once, want 1 (resolver.max_concurrency)", m)
	}
}

// TestExchangeAllSharesTheCycleCache: a question asked twice in one batch,
// or again later by Exchange, goes to the server once; a truncated UDP
// answer in a batch is asked again over TCP, as by Exchange.
func TestExchangeAllSharesTheCycleCache(t *testing.T) {
	var udpQueries, tcpQueries atomic.Int64
	port := serve(t, "127.78.5.4", 0, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := answerFor(r)
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			tcpQueries.Add(1)
		} else {
			udpQueries.Add(1)
			if r.Question[0].Name == "q7.test." {
				m.Answer, m.Truncated = nil, true
			}
		}
		w.WriteMsg(m)
	}))
	r, err := New(config.Resolver{Port: port, Timeout: config.Duration(5 * time.Second), MaxQPSPerServer: 1e6, MaxConcurrency: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	server := netip.MustParseAddrPort(fmt.Sprintf("127.78.5.4:%d", port))
	udp := func(n int) Ask { a := Ask{server, tcpQuery(n)}; a.Query.Proto = UDP; return a }
	cycle := r.NewCycle()
	resps := cycle.ExchangeAll(context.Background(), []Ask{udp(5), udp(6), udp(5), udp(7)})
	wantAnswer(t, resps[0], 5)
	wantAnswer(t, resps[1], 6)
	wantAnswer(t, resps[3], 7)
	if resps[2] != resps[0] {
		t.Errorf("the repeated question got a response of its own: %v", resps[2])
	}
	if resps[3].Proto != TCP {
		t.Errorf("the truncated answer's question was answered over %s, want tcp", resps[3].Proto)
	}
	if again := cycle.Exchange(context.Background(), server, udp(6).Query); again != resps[1] {
		t.Errorf("Exchange asked again what the batch had asked: %v", again)
	}
	if u, c := udpQueries.Load(), tcpQueries.Load(); u != 3 || c != 1 {
		t.Errorf("%d UDP and %d TCP queries, want 3 (q5, q6, q7) and 1 (q7 after TC)", u, c)
	}
}
