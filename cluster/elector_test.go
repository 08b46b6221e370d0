package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testLease = 3 * time.Second

// replica is one elector with its own store, leading through a lead
// function that records its terms.
type replica struct {
	name    string
	st      *store.Postgres
	el      *Elector
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	terms   []int64 // epochs led at
	stopped []time.Time
}

func startReplica(t *testing.T, url, name string) *replica {
	t.Helper()
	return startReplicaLease(t, url, name, testLease)
}

func startReplicaLease(t *testing.T, url, name string, lease time.Duration) *replica {
	t.Helper()
	holder := Holder(name)
	st, err := store.OpenPostgres(context.Background(), url, store.Options{ApplicationName: store.SessionName(holder)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	el, err := NewElector(ElectorOptions{Store: st, Holder: holder, Lease: lease, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, st: st, el: el, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		el.Run(ctx, func(ctx context.Context, epoch int64) {
			r.mu.Lock()
			r.terms = append(r.terms, epoch)
			r.mu.Unlock()
			<-ctx.Done()
			if el.Epoch() != 0 {
				t.Errorf("%s: the leader's context ended while Epoch still reads %d", name, el.Epoch())
			}
			r.mu.Lock()
			r.stopped = append(r.stopped, time.Now())
			r.mu.Unlock()
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func (r *replica) gauge() float64 {
	v, _ := testutil.GatherAndCount(r.reg, "nsguard_leader")
	if v == 0 {
		return -1
	}
	mf, _ := r.reg.Gather()
	for _, f := range mf {
		if f.GetName() == "nsguard_leader" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// leaders waits until exactly one replica leads and its gauge says so,
// and returns it.
func leaders(t *testing.T, within time.Duration, rs ...*replica) (*replica, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		var lead []*replica
		gauges := 0.0
		for _, r := range rs {
			if r.el.Leading() {
				lead = append(lead, r)
			}
			gauges += max(r.gauge(), 0)
		}
		if len(lead) > 1 {
			t.Fatalf("%d replicas lead at once", len(lead))
		}
		if len(lead) == 1 && gauges == 1 {
			return lead[0], time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no single leader within %s", within)
	return nil, 0
}

// Three replicas: one leads (nsguard_leader 1 on it alone); when it stops
// cleanly it hands over at once, when its connection is cut another takes
// over within a lease, and epochs only grow.
func TestElection(t *testing.T) {
	url := pgtest.Database(t)
	rs := []*replica{startReplica(t, url, "fra"), startReplica(t, url, "hk"), startReplica(t, url, "sh")}
	first, took := leaders(t, 2*testLease, rs...)
	t.Logf("first leader %s after %s", first.name, took.Round(time.Millisecond))
	l, _ := first.el.Lease()
	if l.Holder != first.el.Holder() || l.Epoch != first.el.Epoch() || l.Epoch < 1 {
		t.Fatalf("lease %+v, leader %s at %d", l, first.el.Holder(), first.el.Epoch())
	}

	// A clean stop resigns: the next leads at its next try (lease/3).
	first.stop()
	rest := without(rs, first)
	second, took := leaders(t, testLease, rest...)
	t.Logf("after a clean stop, %s leads after %s", second.name, took.Round(time.Millisecond))
	if second.el.Epoch() <= l.Epoch {
		t.Fatalf("epoch went from %d to %d", l.Epoch, second.el.Epoch())
	}

	// The database ends the leader's sessions (a network cut, a failover
	// of the database): its renewal fails, it steps down; a leader is back
	// within a lease, at a higher epoch.
	e2 := second.el.Epoch()
	err := pgtest.Shared(t).Admin(context.Background(), func(c *pgx.Conn) error {
		_, err := c.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, store.SessionName(second.el.Holder()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	deadline := time.Now().Add(testLease)
	for second.el.Epoch() == e2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if second.el.Epoch() == e2 {
		t.Fatalf("%s still leads at epoch %d a lease after its sessions ended", second.name, e2)
	}
	t.Logf("%s stepped down %s after its connection was cut", second.name, time.Since(cut).Round(time.Millisecond))
	third, took := leaders(t, 2*testLease, rest...)
	if third.el.Epoch() <= e2 {
		t.Fatalf("epoch went from %d to %d", e2, third.el.Epoch())
	}
	t.Logf("%s leads at epoch %d, %s after the cut", third.name, third.el.Epoch(), (time.Since(cut)).Round(time.Millisecond))
	_ = took
}

// A leader whose connection to the database is lost (the server ended
// it, restarted, the network reset it) has lost the lock with it, and
// steps down at once — not at its next renewal, lease/3 later: with a 30 s
// lease (renewals 10 s apart) Epoch reads 0 within a second of the cut.
// Then it campaigns again on a new connection and, alone, leads at the
// next epoch.
func TestElectionStepsDownAtOnceWhenTheConnectionIsLost(t *testing.T) {
	const lease = 30 * time.Second
	url := pgtest.Database(t)
	r := startReplicaLease(t, url, "fra", lease)
	leader, _ := leaders(t, 5*time.Second, r)
	e1 := leader.el.Epoch()
	// Just after a renewal would be the worst case for a leader that only
	// notices at its renewals; any moment will do for one that watches.
	time.Sleep(500 * time.Millisecond)
	cut := time.Now()
	err := pgtest.Shared(t).Admin(context.Background(), func(c *pgx.Conn) error {
		_, err := c.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, store.SessionName(r.el.Holder()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	for {
		r.mu.Lock()
		n := len(r.stopped)
		if n > 0 {
			took = r.stopped[0].Sub(cut)
		}
		r.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Since(cut) > lease/3 {
			t.Fatalf("still leading at epoch %d %s after its connection was cut (renewals are %s apart)", r.el.Epoch(), time.Since(cut).Round(time.Millisecond), lease/3)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took > time.Second {
		t.Fatalf("stepped down %s after its connection was cut: it waited for a renewal (every %s) instead of noticing", took.Round(time.Millisecond), lease/3)
	}
	t.Logf("stepped down %s after its connection was cut (lease %s, renewals every %s)", took.Round(time.Millisecond), lease, lease/3)
	if _, why := r.el.Lease(); why == "" {
		t.Error("the elector does not say why it stepped down")
	}
	again, _ := leaders(t, 5*time.Second, r)
	if again.el.Epoch() <= e1 {
		t.Fatalf("epoch %d after leading again, %d before", again.el.Epoch(), e1)
	}
}

// A holder that keeps its lock but stops renewing (a paused process) is
// taken over once its lease lapses: within 2 × lease of its last renewal.
func TestElectionTakesOverFromAPausedHolder(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	paused, err := store.OpenPostgres(ctx, url, store.Options{ApplicationName: store.SessionName("paused/000000")})
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close()
	sess, err := paused.LeaderSession(ctx, "paused/000000", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	l, ok, err := sess.TryLead(ctx, "paused/000000", testLease)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	r := startReplica(t, url, "hk")
	leader, took := leaders(t, 3*testLease, r)
	if leader.el.Epoch() != l.Epoch+1 {
		t.Fatalf("epoch %d after a takeover from epoch %d", leader.el.Epoch(), l.Epoch)
	}
	if took > 2*testLease {
		t.Fatalf("takeover from a paused holder took %s, more than 2 × lease", took)
	}
	t.Logf("took over from a paused holder %s after its last renewal (lease %s)", took.Round(time.Millisecond), testLease)
	if _, err := sess.Renew(ctx, "paused/000000", l.Epoch, testLease); err == nil {
		t.Fatal("the paused holder renewed after the takeover")
	}
}

func without(rs []*replica, drop *replica) []*replica {
	var out []*replica
	for _, r := range rs {
		if r != drop {
			out = append(out, r)
		}
	}
	return out
}

func (r *replica) String() string { return fmt.Sprintf("%s(%s)", r.name, r.el.Holder()) }
