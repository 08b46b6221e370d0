package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store/pgtest"
)

// Each vantage keeps its own latest observation; the plain reads give the
// newest of any vantage, VantageObservations every vantage's since a time,
// and a vantage that stopped reporting is pruned with its rows.
func testObservationsPerVantage(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	put := func(domain, vantage string, at time.Duration, data, report string) bool {
		t.Helper()
		var rep json.RawMessage
		if report != "" {
			rep = json.RawMessage(report)
		}
		changed, err := s.PutObservation(ctx, Observation{Domain: domain, Class: "dns", Vantage: vantage, ObservedAt: t0.Add(at),
			Data: json.RawMessage(data), Report: rep})
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	steps := []struct {
		domain, vantage string
		at              time.Duration
		data, report    string
		wantChanged     bool
	}{
		{"a.com", "fra", 0, `{"ns":["x"]}`, `{"findings":[]}`, true},
		{"a.com", "hk", time.Second, `{"ns":["x"]}`, `{"findings":[]}`, true}, // another vantage: its own first row
		{"a.com", "fra", time.Minute, `{"ns":["x"]}`, `{"findings":[]}`, false},
		{"a.com", "sh", time.Minute + time.Second, `{"ns":["evil"]}`, `{"findings":[{"id":"NS_NOT_AS_DECLARED"}]}`, true},
		{"a.com", "hk", time.Minute + 2*time.Second, `{"ns":["x"]}`, `{"findings":[]}`, false},
		{"b.com", "fra", 2 * time.Minute, `{"ns":["y"]}`, `{"findings":[]}`, true},
		{"b.com", "hk", 30 * time.Second, `{"ns":["y"]}`, "", true}, // hk is behind on b.com
	}
	for i, st := range steps {
		if got := put(st.domain, st.vantage, st.at, st.data, st.report); got != st.wantChanged {
			t.Fatalf("step %d: changed = %v, want %v", i, got, st.wantChanged)
		}
	}
	o, err := s.LatestObservation(ctx, "a.com", "dns")
	if err != nil || o.Vantage != "hk" || !o.ObservedAt.Equal(t0.Add(time.Minute+2*time.Second)) {
		t.Fatalf("latest of a.com = %s at %s, %v; want hk's, the newest", o.Vantage, o.ObservedAt, err)
	}
	all, err := s.LatestObservations(ctx, "dns")
	var got []string
	for _, o := range all {
		got = append(got, o.Domain+"/"+o.Vantage)
	}
	if err != nil || strings.Join(got, " ") != "a.com/hk b.com/fra" {
		t.Fatalf("latest observations = %v, %v; want the newest row of each domain", got, err)
	}
	vs, err := s.VantageObservations(ctx, "a.com", "dns", t0.Add(time.Minute))
	got = nil
	for _, o := range vs {
		if o.Data != nil {
			t.Errorf("VantageObservations returned data for %s", o.Vantage)
		}
		got = append(got, o.Vantage+"="+string(o.Report))
	}
	if err != nil || strings.Join(got, " ") != `fra={"findings":[]} hk={"findings":[]} sh={"findings":[{"id":"NS_NOT_AS_DECLARED"}]}` {
		t.Fatalf("vantage observations = %v, %v", got, err)
	}
	if vs, err := s.VantageObservations(ctx, "a.com", "dns", t0.Add(time.Minute+time.Second)); err != nil || len(vs) != 2 {
		t.Fatalf("since a later time = %d rows, %v; want sh and hk", len(vs), err)
	}
	h, err := s.ObservationHistory(ctx, "a.com", "dns", 0)
	got = nil
	for _, o := range h {
		got = append(got, o.Vantage)
	}
	if err != nil || strings.Join(got, " ") != "sh hk fra" {
		t.Fatalf("history = %v, %v; want each vantage's changes, newest first", got, err)
	}
	// hk last reported at 1m02s, sh at 1m01s, fra at 2m: prune before 1m30s.
	n, err := s.PruneVantages(ctx, t0.Add(90*time.Second))
	if err != nil || n != 3 {
		t.Fatalf("prune vantages = %d, %v; want sh's row and hk's two", n, err)
	}
	if all, _ := s.LatestObservations(ctx, "dns"); len(all) != 2 || all[0].Vantage != "fra" || all[1].Vantage != "fra" {
		t.Fatalf("after pruning: %+v", all)
	}
	// A single node's rows (vantage '') are never pruned as a vantage.
	put("c.com", "", 0, `{}`, "")
	if at, err := s.LastObserved(ctx, "dns"); err != nil || !at.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("last observed = %s, %v", at, err)
	}
	if at, err := s.LastObserved(ctx, "registration"); err != nil || !at.IsZero() {
		t.Fatalf("last observed, never = %s, %v", at, err)
	}
	if n, err := s.PruneVantages(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("prune vantages = %d, %v; want fra's two rows only", n, err)
	}
	if o, err := s.LatestObservation(ctx, "c.com", "dns"); err != nil || o.Vantage != "" || o.Report != nil {
		t.Fatalf("single node's row = %+v, %v", o, err)
	}
}

func testRecheckRequests(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	if err := s.RequestRechecks(ctx, "dns", []string{"a.com", "b.com"}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestRechecks(ctx, "dns", []string{"b.com"}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Rechecks(ctx, "dns", time.Time{})
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s@%s", r.Domain, r.DueAt.Sub(t0)))
	}
	if err != nil || strings.Join(got, " ") != "a.com@0s b.com@1s" {
		t.Fatalf("rechecks = %v, %v; want one row per domain, the latest request", got, err)
	}
	if rs, err := s.Rechecks(ctx, "dns", t0); err != nil || len(rs) != 1 || rs[0].Domain != "b.com" {
		t.Fatalf("rechecks after t0 = %+v, %v", rs, err)
	}
	if rs, err := s.Rechecks(ctx, "registration", time.Time{}); err != nil || len(rs) != 0 {
		t.Fatalf("another class = %+v, %v", rs, err)
	}
	if _, err := s.LeaderLease(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lease before anyone led: %v, want ErrNotFound", err)
	}
}

// leaderOf opens a store named for holder (its sessions carry the name)
// and a leader session of its own.
func leaderOf(t *testing.T, url, holder string) (*Postgres, *LeaderSession) {
	t.Helper()
	ctx := context.Background()
	st, err := OpenPostgres(ctx, url, Options{ApplicationName: SessionName(holder), BusyTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := st.LeaderSession(ctx, holder, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return st, s
}

// tryUntil tries to lead for a few seconds: a closed session's backend
// lets go of its lock a moment after the client closes it.
func tryUntil(t *testing.T, s *LeaderSession, holder string, lease time.Duration) (LeaderLease, bool, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, ok, err := s.TryLead(context.Background(), holder, lease)
		if ok || err != nil || time.Now().After(deadline) {
			return l, ok, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// At most one session leads; the epoch grows with every takeover; a lost
// leader's renewal is refused; a resignation hands over at once.
func TestPostgresLeaderSession(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	_, a := leaderOf(t, url, "a")
	_, b := leaderOf(t, url, "b")
	const lease = 10 * time.Second

	la, ok, err := a.TryLead(ctx, "a", lease)
	if err != nil || !ok || la.Epoch != 1 || la.Holder != "a" {
		t.Fatalf("a's first try = %+v, %v, %v; want epoch 1", la, ok, err)
	}
	if got := la.ExpiresAt.Sub(la.RenewedAt); got != lease {
		t.Fatalf("lease runs %s, want %s", got, lease)
	}
	lb, ok, err := b.TryLead(ctx, "b", lease)
	if err != nil || ok || lb.Holder != "a" || lb.Epoch != 1 {
		t.Fatalf("b's try while a leads = %+v, %v, %v; want a at epoch 1", lb, ok, err)
	}
	if r, err := a.Renew(ctx, "a", 1, lease); err != nil || !r.ExpiresAt.After(la.ExpiresAt.Add(-time.Millisecond)) {
		t.Fatalf("renew = %+v, %v", r, err)
	}
	// a resigns: b takes over at its next try, epoch 2.
	if err := a.Resign(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	lb, ok, err = b.TryLead(ctx, "b", lease)
	if err != nil || !ok || lb.Epoch != 2 {
		t.Fatalf("b after a resigned = %+v, %v, %v; want epoch 2", lb, ok, err)
	}
	// Taking over ended a's sessions, its leader connection too.
	if _, err := a.Renew(ctx, "a", 1, lease); err == nil {
		t.Fatal("a renewed on a session the takeover ended")
	}
	_, a = leaderOf(t, url, "a")
	if _, err := a.Renew(ctx, "a", 1, lease); !errors.Is(err, ErrFenced) {
		t.Fatalf("a's renewal after b took over: %v, want ErrFenced", err)
	}
	// b's connection dies (a crash, kill -9): the lock goes with it and a
	// takes over although b's lease has not lapsed.
	b.Close()
	la, ok, err = tryUntil(t, a, "a", lease)
	if err != nil || !ok || la.Epoch != 3 {
		t.Fatalf("a after b's connection closed = %+v, %v, %v; want epoch 3", la, ok, err)
	}
}

// A leader whose session still holds the lock but whose lease lapsed (a
// paused process) is ended by the next candidate, which then leads with
// the next epoch; the paused one's writes are refused by the fence, and a
// transaction it held open is rolled back rather than committed late.
func TestPostgresTakeoverFromAPausedLeader(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	stA, a := leaderOf(t, url, "a")
	stB, b := leaderOf(t, url, "b")
	const lease = 10 * time.Second
	if _, ok, err := a.TryLead(ctx, "a", lease); err != nil || !ok {
		t.Fatalf("a: %v, %v", ok, err)
	}
	var epochA int64 = 1
	fa := Fenced(stA, "a", func() int64 { return epochA })
	if _, err := fa.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "page", ThreadKey: "t", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("a's fenced enqueue while it leads: %v", err)
	}
	// While a's lease runs, b cannot lead.
	if _, ok, err := b.TryLead(ctx, "b", lease); err != nil || ok {
		t.Fatalf("b while a's lease runs: %v, %v", ok, err)
	}
	// a stops renewing (paused): its lease lapses, forced here rather than
	// waited for.
	if _, err := stB.db.ExecContext(ctx, `UPDATE leader_lease SET expires_at = `+dbNow+` - 1`); err != nil {
		t.Fatal(err)
	}
	// a opens a fenced transaction and "pauses" in it, holding the lease
	// row FOR SHARE and the writer lock.
	paused := make(chan struct{})
	resume := make(chan struct{})
	txErr := make(chan error, 1)
	go func() {
		txErr <- fa.InTx(ctx, func(q Queries) error {
			close(paused)
			<-resume
			_, err := q.CreateIncident(ctx, Incident{Domain: "late.com", Status: IncidentOpen, Severity: "critical", ThreadKey: "late", OpenedAt: t0, UpdatedAt: t0, Data: json.RawMessage(`{}`)})
			return err
		})
	}()
	<-paused
	start := time.Now()
	lb, ok, err := b.TryLead(ctx, "b", lease)
	if err != nil || !ok || lb.Epoch != 2 || lb.Holder != "b" {
		t.Fatalf("b after a's lease lapsed = %+v, %v, %v; want b at epoch 2", lb, ok, err)
	}
	t.Logf("takeover from a paused leader took %s", time.Since(start).Round(time.Millisecond))
	close(resume)
	if err := <-txErr; err == nil {
		t.Fatal("a's transaction, open across the takeover, committed")
	}
	if _, err := stB.Incidents(ctx, IncidentFilter{Domain: "late.com"}); err != nil {
		t.Fatal(err)
	}
	if incs, _ := stB.Incidents(ctx, IncidentFilter{Domain: "late.com"}); len(incs) != 0 {
		t.Fatalf("a's late incident was written: %+v", incs)
	}
	// a wakes up still believing it leads at epoch 1: every write refused.
	checks := map[string]func() error{
		"InTx": func() error { return fa.InTx(ctx, func(Queries) error { return nil }) },
		"Enqueue": func() error {
			_, err := fa.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", Payload: json.RawMessage(`{}`)})
			return err
		},
		"ClaimDue": func() error {
			_, err := fa.ClaimDue(ctx, Claim{Owner: "a", Epoch: 1, Now: t0, Until: t0.Add(time.Minute)})
			return err
		},
		"CheckFence": func() error { return CheckFence(ctx, fa) },
		"Renew":      func() error { _, err := a.Renew(ctx, "a", 1, lease); return err },
		"PutSlack": func() error {
			return fa.PutSlackThread(ctx, SlackThread{Key: "t", Channel: "C1", TS: "1.0", CreatedAt: t0})
		},
		"FailoverRun": func() error {
			_, err := fa.CreateFailoverRun(ctx, FailoverRun{Playbook: "p", StartedAt: t0, Plan: json.RawMessage(`{}`)})
			return err
		},
	}
	for name, f := range checks {
		var err error
		// The takeover ended a's sessions: the pool reconnects on the
		// next call (database/sql retries a bad connection).
		for range 3 {
			if err = f(); errors.Is(err, ErrFenced) || name == "Renew" {
				break
			}
		}
		if name == "Renew" {
			if err == nil {
				t.Errorf("a's renewal on its ended session succeeded")
			}
			continue
		}
		if !errors.Is(err, ErrFenced) {
			t.Errorf("%s by the paused leader: %v, want ErrFenced", name, err)
		}
	}
	// b, at epoch 2, writes.
	fb := Fenced(stB, "b", func() int64 { return 2 })
	got, err := fb.ClaimDue(ctx, Claim{Owner: "b", Epoch: 2, Now: t0, Until: t0.Add(time.Minute)})
	if err != nil || len(got) != 1 || got[0].ClaimEpoch != 2 {
		t.Fatalf("b's fenced claim = %+v, %v", got, err)
	}
	if err := fb.MarkDelivered(ctx, got[0].ID, "b", 1, t0); err != nil {
		t.Fatal(err)
	}
}

// A fenced transaction and a takeover serialise on the lease row: the
// takeover's epoch bump waits for the transaction in flight (not one of the
// old holder's own sessions here), which commits under the old epoch; the
// next one is refused.
func TestPostgresFenceSerialisesWithTheBump(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	_, a := leaderOf(t, url, "a")
	_, b := leaderOf(t, url, "b")
	plain, err := OpenPostgres(ctx, url, Options{}) // sessions not named for a: the takeover leaves them
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok, err := a.TryLead(ctx, "a", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	fa := Fenced(plain, "a", func() int64 { return 1 })
	inside := make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	txDone := make(chan error, 1)
	go func() {
		txDone <- fa.InTx(ctx, func(q Queries) error {
			close(inside)
			time.Sleep(300 * time.Millisecond)
			_, err := q.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", Payload: json.RawMessage(`{}`)})
			note("a commits")
			return err
		})
	}()
	<-inside
	a.Close() // a's lock goes (as its backend exits); b may lead
	lb, ok, err := tryUntil(t, b, "b", time.Minute)
	note("b bumped")
	if err != nil || !ok || lb.Epoch != 2 {
		t.Fatalf("b = %+v, %v, %v", lb, ok, err)
	}
	if err := <-txDone; err != nil {
		t.Fatalf("a's transaction begun before the takeover: %v", err)
	}
	if strings.Join(order, ", ") != "a commits, b bumped" {
		t.Fatalf("order = %v; the bump must wait for the fenced transaction in flight", order)
	}
	if err := fa.InTx(ctx, func(Queries) error { return nil }); !errors.Is(err, ErrFenced) {
		t.Fatalf("a after the bump: %v, want ErrFenced", err)
	}
	if id, _ := plain.LastOutboxID(ctx); id != 1 {
		t.Fatalf("outbox holds %d messages, want a's one", id)
	}
}

// On SQLite there is no cluster: Fenced is the store itself, and writes
// go through whatever the epoch says.
func TestFencedIsANoOpOnSQLite(t *testing.T) {
	s, _ := openTemp(t)
	f := Fenced(s, "anyone", func() int64 { return 0 })
	if f != Store(s) {
		t.Fatalf("Fenced(SQLite) = %T, want the store itself", f)
	}
	if err := CheckFence(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Enqueue(context.Background(), OutboxMessage{CreatedAt: t0, Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
}

// A fenced store of a process that does not lead (epoch 0) refuses at
// once, without asking the database.
func TestFencedRefusesWithoutAnEpoch(t *testing.T) {
	url := pgtest.Database(t)
	st, err := OpenPostgres(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := Fenced(st, "follower", func() int64 { return 0 })
	if err := f.InTx(context.Background(), func(Queries) error { return nil }); !errors.Is(err, ErrFenced) {
		t.Fatalf("InTx of a follower: %v, want ErrFenced", err)
	}
	// Reads are not fenced.
	if _, err := f.OutboxStats(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// After a database restart, the pool's connections that the server ended
// fail one statement between them, not one each: the first FATAL makes
// every pooled connection be pinged before its next use.
func TestPostgresRestartFailsOnce(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	st, err := OpenPostgres(ctx, srv.Database(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Fill the pool: eight connections held at once, then idle.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.db.ExecContext(ctx, `SELECT pg_sleep(0.2)`)
		}()
	}
	wg.Wait()
	if n := st.db.Stats().Idle; n < 4 {
		t.Fatalf("only %d idle connections", n)
	}
	if err := srv.Restart(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := range 20 {
		if err := st.Heartbeat(ctx, "r", t0.Add(time.Duration(i)*time.Second), ""); err != nil {
			failed++
		}
	}
	if failed > 1 {
		t.Fatalf("%d of 20 writes failed after the restart; want at most the first", failed)
	}
}
