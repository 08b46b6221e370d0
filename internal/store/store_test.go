package store

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store/pgtest"
)

var t0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testDB is a new, empty database of one backend.
type testDB struct {
	backend string
	// location is the database for another process: sqlite:PATH or a
	// postgres:// URL.
	location string
	// try opens another handle on the database, with pools of its own:
	// what a second process (a CLI command, another replica) would have.
	try func(ctx context.Context, opts Options) (Store, error)
	// another makes another new database of the same backend.
	another func(t testing.TB) testDB
}

// open opens a handle, closed when t ends.
func (db testDB) open(t testing.TB, opts Options) Store {
	t.Helper()
	s, err := db.try(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", db.backend, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// store opens a handle with default options.
func (db testDB) store(t testing.TB) Store {
	t.Helper()
	return db.open(t, Options{})
}

// backend makes new databases of one kind for the shared suite.
type backend struct {
	name  string
	newDB func(t testing.TB) testDB
}

var backends = []backend{
	{"sqlite", func(t testing.TB) testDB {
		path := filepath.Join(t.TempDir(), "nsguard.db")
		return testDB{backend: "sqlite", location: "sqlite:" + path, try: func(ctx context.Context, opts Options) (Store, error) {
			s, err := Open(ctx, path, opts)
			if err != nil {
				return nil, err
			}
			return s, nil
		}}
	}},
	{"postgres", func(t testing.TB) testDB {
		url := pgtest.Database(t)
		return testDB{backend: "postgres", location: url, try: func(ctx context.Context, opts Options) (Store, error) {
			s, err := OpenPostgres(ctx, url, opts)
			if err != nil {
				return nil, err
			}
			return s, nil
		}}
	}},
}

// openTemp opens a new SQLite store in a temporary directory, for the
// SQLite-only tests.
func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nsguard.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// raw is the backend's own handle, for a test to set up what the API
// cannot (a claim, a future schema version).
func raw(s Store) *sql.DB {
	switch s := s.(type) {
	case *SQLite:
		return s.w
	case *Postgres:
		return s.db
	}
	panic(fmt.Sprintf("raw: unknown store %T", s))
}

// storeTests is the behaviour both backends share: each runs once per
// backend, on a new database (TestStore/sqlite/..., TestStore/postgres/...).
var storeTests = []struct {
	name string
	run  func(t *testing.T, db testDB)
}{
	{"OpenMigratesAndReopens", testOpenMigratesAndReopens},
	{"OpenRefusesNewerSchema", testOpenRefusesNewerSchema},
	{"ObservationsHistoryOnlyOnChange", testObservationsHistoryOnlyOnChange},
	{"BaselinesAreVersioned", testBaselinesAreVersioned},
	{"LatestBaselinesAndUnconfirmedDomains", testLatestBaselinesAndUnconfirmedDomains},
	{"IncidentsPerProblemAndAcks", testIncidentsPerProblemAndAcks},
	{"ClaimDueKeepsThreadOrder", testClaimDueKeepsThreadOrder},
	{"ClaimsAreExclusiveUntilTheyLapse", testClaimsAreExclusiveUntilTheyLapse},
	{"ConcurrentClaimersNeverShareAMessage", testConcurrentClaimersNeverShareAMessage},
	{"ClaimersInSeparateProcesses", testClaimersInSeparateProcesses},
	{"Silences", testSilences},
	{"FailoverLock", testFailoverLock},
	{"FailoverLockRace", testFailoverLockRace},
	{"InTxRollsBack", testInTxRollsBack},
	{"ConcurrentWritersTwoHandles", testConcurrentWritersTwoHandles},
	{"ReadThenWriteTransactionsSerialise", testReadThenWriteTransactionsSerialise},
	{"WriterWaitsThenErrBusy", testWriterWaitsThenErrBusy},
	{"SlackThreads", testSlackThreads},
	{"FreeTextIsStoredAlike", testFreeTextIsStoredAlike},
	{"ConcurrentOpensOfANewDatabase", testConcurrentOpensOfANewDatabase},
	{"ObservationsPerVantage", testObservationsPerVantage},
	{"RecheckRequests", testRecheckRequests},
}

func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range storeTests {
				t.Run(tc.name, func(t *testing.T) {
					db := b.newDB(t)
					db.another = b.newDB
					tc.run(t, db)
				})
			}
		})
	}
}

func testOpenMigratesAndReopens(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != LatestSchema() || v < 1 {
		t.Fatalf("schema version = %d, %v; want %d", v, err, LatestSchema())
	}
	if _, err := s.ApproveBaseline(ctx, Baseline{Domain: "shop-example.com", Data: json.RawMessage(`{"ns":["a"]}`), ApprovedBy: "ann", ApprovedAt: t0, Reason: "initial"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "open", Channel: "#c", ThreadKey: "k", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := db.store(t)
	b, err := s2.LatestBaseline(ctx, "shop-example.com")
	if err != nil || b.Version != 1 || b.ApprovedBy != "ann" || !b.ApprovedAt.Equal(t0) || string(b.Data) != `{"ns":["a"]}` {
		t.Fatalf("baseline after reopen = %+v, %v", b, err)
	}
	st, err := s2.OutboxStats(ctx)
	if err != nil || st.Pending != 1 {
		t.Fatalf("outbox after reopen = %+v, %v", st, err)
	}
}

func testOpenRefusesNewerSchema(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	if _, err := raw(s).ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := db.try(ctx, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 999") {
		t.Fatalf("open of a newer schema: err = %v, want a clear refusal", err)
	}
}

func TestOpenBadPaths(t *testing.T) {
	for _, tc := range []struct{ name, path, want string }{
		{"empty", "", "empty path"},
		{"missing dir", filepath.Join(t.TempDir(), "nope", "x.db"), "directory"},
		{"question mark", filepath.Join(t.TempDir(), "x?.db"), "must not contain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), tc.path, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func testObservationsHistoryOnlyOnChange(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	steps := []struct {
		data        string
		wantChanged bool
	}{
		{`{"ns":["a","b"]}`, true},
		{`{"ns":["a","b"]}`, false},
		{`{"ns":["evil"]}`, true},
		{`{"ns":["evil"]}`, false},
		{`{"ns":["a","b"]}`, true},
	}
	for i, st := range steps {
		changed, err := s.PutObservation(ctx, Observation{Domain: "d.com", Class: "dns", ObservedAt: t0.Add(time.Duration(i) * time.Minute), Data: json.RawMessage(st.data)})
		if err != nil || changed != st.wantChanged {
			t.Fatalf("step %d: changed = %v, %v; want %v", i, changed, err, st.wantChanged)
		}
	}
	o, err := s.LatestObservation(ctx, "d.com", "dns")
	if err != nil || string(o.Data) != `{"ns":["a","b"]}` || !o.ObservedAt.Equal(t0.Add(4*time.Minute)) || !o.ChangedAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("latest = %+v, %v", o, err)
	}
	h, err := s.ObservationHistory(ctx, "d.com", "dns", 0)
	if err != nil || len(h) != 3 {
		t.Fatalf("history = %d rows, %v; want 3 (one per change)", len(h), err)
	}
	if _, err := s.LatestObservation(ctx, "d.com", "registration"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other class: err = %v, want ErrNotFound", err)
	}
	all, err := s.LatestObservations(ctx, "dns")
	if err != nil || len(all) != 1 {
		t.Fatalf("latest observations = %v, %v", all, err)
	}
	pr, err := s.Prune(ctx, t0.Add(3*time.Minute))
	if err != nil || pr.History != 2 {
		t.Fatalf("prune = %+v, %v; want 2 history rows", pr, err)
	}
}

func testBaselinesAreVersioned(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	for i, who := range []string{"ann", "bob", "cy"} {
		b, err := s.ApproveBaseline(ctx, Baseline{Domain: "d.com", Data: json.RawMessage(fmt.Sprintf(`{"v":%d}`, i)), ApprovedBy: who, ApprovedAt: t0.Add(time.Duration(i) * time.Hour), Reason: "r"})
		if err != nil || b.Version != i+1 {
			t.Fatalf("approve %d: version %d, %v", i, b.Version, err)
		}
	}
	bs, err := s.Baselines(ctx, "d.com")
	if err != nil || len(bs) != 3 || bs[0].Version != 3 || bs[0].ApprovedBy != "cy" {
		t.Fatalf("baselines = %+v, %v", bs, err)
	}
	if _, err := s.LatestBaseline(ctx, "other.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no baseline: err = %v", err)
	}
	if _, err := s.AddChange(ctx, Change{Domain: "d.com", Class: "dns", DetectedAt: t0, BaselineVersion: 3, Data: json.RawMessage(`{"field":"ns"}`)}); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Changes(ctx, "d.com", 10)
	if err != nil || len(cs) != 1 || cs[0].BaselineVersion != 3 {
		t.Fatalf("changes = %+v, %v", cs, err)
	}
}

func testLatestBaselinesAndUnconfirmedDomains(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	for _, d := range []string{"a.com", "b.com", "a.com"} {
		if _, err := s.ApproveBaseline(ctx, Baseline{Domain: d, Data: json.RawMessage(`{}`), ApprovedBy: "x", ApprovedAt: t0, Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := s.LatestBaselines(ctx)
	if err != nil || len(bs) != 2 || bs[0].Domain != "a.com" || bs[0].Version != 2 || bs[1].Version != 1 {
		t.Fatalf("latest baselines = %+v, %v", bs, err)
	}
	for _, fs := range []FindingState{
		{Domain: "a.com", Class: "dns", Key: "k1", Severity: "critical", Streak: 1},
		{Domain: "b.com", Class: "dns", Key: "k1", Severity: "critical", Streak: 2},
		{Domain: "c.com", Class: "dns", Key: "k1", Severity: "info", Streak: 1},
		{Domain: "d.com", Class: "registration", Key: "k1", Severity: "warning", Streak: 1},
		{Domain: "e.com", Class: "dns", Key: "k1", Severity: "warning", Streak: 1},
		{Domain: "e.com", Class: "dns", Key: "k2", Severity: "warning", Streak: 1},
		// An incident's finding gone once (a clear not yet confirmed), and
		// one gone long enough.
		{Domain: "f.com", Class: "dns", Key: "k1", Severity: "critical", Streak: 0, Absent: 1},
		{Domain: "g.com", Class: "dns", Key: "k1", Severity: "critical", Streak: 0, Absent: 2},
	} {
		fs.FirstSeen, fs.LastSeen, fs.Data = t0, t0, json.RawMessage(`{}`)
		if err := s.PutFindingState(ctx, fs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.UnconfirmedDomains(ctx, "dns", 2, []string{"warning", "critical"})
	if err != nil || strings.Join(got, ",") != "a.com,e.com,f.com" {
		t.Fatalf("unconfirmed = %v, %v", got, err)
	}
	states, err := s.FindingStates(ctx, "f.com")
	if err != nil || len(states) != 1 || states[0].Absent != 1 || states[0].Streak != 0 {
		t.Fatalf("finding states of f.com = %+v, %v", states, err)
	}
}

func testIncidentsPerProblemAndAcks(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	inc := Incident{Domain: "d.com", Status: IncidentOpen, Severity: "warning", Title: "one name server lame", ThreadKey: "incident:1",
		OpenedAt: t0, UpdatedAt: t0, Data: json.RawMessage(`{}`)}
	first, err := s.CreateIncident(ctx, inc)
	if err != nil {
		t.Fatal(err)
	}
	// A second, unrelated problem on the same domain is its own incident.
	inc.Severity, inc.Title, inc.ThreadKey = "critical", "delegation changed", "incident:2"
	second, err := s.CreateIncident(ctx, inc)
	if err != nil {
		t.Fatalf("second open incident on one domain: %v", err)
	}
	open, err := s.OpenIncidents(ctx, "d.com")
	if err != nil || len(open) != 2 || open[0].ID != first || open[1].ID != second || open[1].Title != "delegation changed" {
		t.Fatalf("open incidents = %+v, %v", open, err)
	}
	got := open[0]
	got.AckedAt, got.AckedBy, got.AckReason = t0.Add(time.Minute), "ann", "on it"
	if err := s.UpdateIncident(ctx, got); err != nil {
		t.Fatal(err)
	}
	counts, err := s.OpenIncidentCounts(ctx)
	if err != nil || fmt.Sprint(counts) != "[{critical false 1} {warning true 1}]" {
		t.Fatalf("open incident counts = %v, %v", counts, err)
	}
	back, err := s.Incident(ctx, first)
	if err != nil || !back.Acked() || back.AckedBy != "ann" || back.AckReason != "on it" || !back.AckedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("acked incident = %+v, %v", back, err)
	}
	back.Status, back.ResolvedAt, back.PagedAt = IncidentResolved, t0.Add(time.Hour), t0
	if err := s.UpdateIncident(ctx, back); err != nil {
		t.Fatal(err)
	}
	if open, err := s.OpenIncidents(ctx, ""); err != nil || len(open) != 1 || open[0].ID != second {
		t.Fatalf("after resolving the first: open = %+v, %v", open, err)
	}
	if n, err := s.CountOpenIncidents(ctx); err != nil || n != 1 {
		t.Fatalf("open incidents = %d, %v", n, err)
	}
	// Messages are filed under their incident.
	for _, id := range []int64{first, second, first} {
		if _, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "open", ThreadKey: fmt.Sprintf("incident:%d", id), IncidentID: id, Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if ms, err := s.IncidentMessages(ctx, first); err != nil || len(ms) != 2 || ms[0].IncidentID != first {
		t.Fatalf("messages of incident %d = %+v, %v", first, ms, err)
	}
}

func testClaimDueKeepsThreadOrder(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	enq := func(thread string) int64 {
		id, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", Channel: "#c", ThreadKey: thread, Payload: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, b1, a2, n1, n2, b2 := enq("a"), enq("b"), enq("a"), enq(""), enq(""), enq("b")
	// Each call claims for a new owner and releases what it got, so the
	// order rules are seen apart from the claims.
	owner := 0
	ids := func(now time.Time) []int64 {
		owner++
		ms, err := s.ClaimDue(ctx, Claim{Owner: fmt.Sprint("o", owner), Now: now, Until: now.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, m := range ms {
			out = append(out, m.ID)
			if _, err := raw(s).ExecContext(ctx, `UPDATE outbox SET claim_owner = '', claim_until = NULL WHERE id = $1`, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	if got, want := fmt.Sprint(ids(t0)), fmt.Sprint([]int64{a1, b1, n1, n2}); got != want {
		t.Fatalf("due = %s, want heads of each thread %s", got, want)
	}
	claim := func(owner string, id int64) {
		t.Helper()
		if _, err := raw(s).ExecContext(ctx, `UPDATE outbox SET claim_owner = $2, claim_until = $3 WHERE id = $1`, id, owner, t0.Add(time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	// a1 backs off: a2 must wait behind it; b proceeds.
	claim("x", a1)
	claim("x", b1)
	if err := s.MarkRetry(ctx, a1, "x", 1, t0.Add(time.Minute), "http 500"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, b1, "x", 1, t0); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ids(t0)), fmt.Sprint([]int64{n1, n2, b2}); got != want {
		t.Fatalf("due = %s, want %s", got, want)
	}
	// A dead message no longer holds its thread.
	claim("x", a1)
	if err := s.MarkDead(ctx, a1, "x", 2, t0, "channel_not_found"); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(ids(t0)), fmt.Sprint([]int64{a2, n1, n2, b2}); got != want {
		t.Fatalf("due = %s, want %s", got, want)
	}
	st, err := s.OutboxStats(ctx)
	if err != nil || st.Pending != 4 || st.Dead != 1 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	if err := s.MarkDelivered(ctx, b1, "x", 1, t0); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("delivering twice: err = %v, want ErrClaimLost", err)
	}
	if err := s.Requeue(ctx, a1, t0); err != nil {
		t.Fatal(err)
	}
	m, err := s.OutboxMessage(ctx, a1)
	if err != nil || !m.DeadAt.IsZero() || m.LastError != "channel_not_found" || m.Attempts != 2 || m.ClaimOwner != "" {
		t.Fatalf("requeued = %+v, %v", m, err)
	}
}

// Two senders: a running claim is exclusive, a lapsed one is taken over,
// and the first owner can no longer settle the message.
func testClaimsAreExclusiveUntilTheyLapse(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	id, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: "t", Payload: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDue(ctx, Claim{Owner: "daemon", Epoch: 7, Now: t0, Until: t0.Add(time.Minute)})
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].ClaimOwner != "daemon" || got[0].ClaimEpoch != 7 {
		t.Fatalf("first claim = %+v, %v", got, err)
	}
	if got, err := s.ClaimDue(ctx, Claim{Owner: "cli", Now: t0.Add(59 * time.Second), Until: t0.Add(2 * time.Minute)}); err != nil || len(got) != 0 {
		t.Fatalf("a claim still running was taken: %+v, %v", got, err)
	}
	// The daemon was killed: its claim lapses and the CLI takes over.
	got, err = s.ClaimDue(ctx, Claim{Owner: "cli", Now: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute)})
	if err != nil || len(got) != 1 || got[0].ClaimOwner != "cli" {
		t.Fatalf("lapsed claim not taken over: %+v, %v", got, err)
	}
	if err := s.MarkDelivered(ctx, id, "daemon", 1, t0); !errors.Is(err, ErrClaimLost) {
		t.Fatalf("the old owner settled a message it no longer holds: %v", err)
	}
	if err := s.MarkDelivered(ctx, id, "cli", 1, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimDue(ctx, Claim{Owner: "", Now: t0, Until: t0.Add(time.Minute)}); err == nil {
		t.Fatal("a claim without an owner was accepted")
	}
}

// Many senders on one file, each with its own connection pools as separate
// processes would have: every message is claimed exactly once.
func testConcurrentClaimersNeverShareAMessage(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	const messages = 200
	for i := range messages {
		if _, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: fmt.Sprint("t", i%7), Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		st := db.store(t)
		owner := fmt.Sprint("sender-", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idle := 0; idle < 20; {
				now := time.Now()
				ms, err := st.ClaimDue(ctx, Claim{Owner: owner, Now: now, Until: now.Add(time.Minute), Limit: 5})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ms) == 0 {
					idle++
					time.Sleep(time.Millisecond)
					continue
				}
				for _, m := range ms {
					mu.Lock()
					if prev, dup := claimed[m.ID]; dup {
						t.Errorf("message %d claimed by %s and %s", m.ID, prev, owner)
					}
					claimed[m.ID] = owner
					mu.Unlock()
					if err := st.MarkDelivered(ctx, m.ID, owner, 1, now); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(claimed) != messages {
		t.Fatalf("%d of %d messages delivered", len(claimed), messages)
	}
}

func testSilences(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	add := func(domain string, start, end time.Time) int64 {
		id, err := s.AddSilence(ctx, Silence{Domain: domain, CreatedBy: "ann", Reason: "maintenance", CreatedAt: t0, StartsAt: start, EndsAt: end})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	d := add("d.com", t0, t0.Add(2*time.Hour))
	all := add("*", t0.Add(time.Hour), t0.Add(3*time.Hour))
	add("other.com", t0, t0.Add(time.Hour))
	count := func(at time.Time, domain string) int {
		ss, err := s.Silences(ctx, SilenceFilter{ActiveAt: at, Domain: domain})
		if err != nil {
			t.Fatal(err)
		}
		return len(ss)
	}
	for _, tc := range []struct {
		at     time.Time
		domain string
		want   int
	}{
		{t0, "d.com", 1},
		{t0.Add(90 * time.Minute), "d.com", 2},
		{t0.Add(2 * time.Hour), "d.com", 1}, // d.com's ended; "*" still on
		{t0.Add(3 * time.Hour), "d.com", 0},
		{t0, "", 2},
		{time.Time{}, "", 3},
	} {
		if got := count(tc.at, tc.domain); got != tc.want {
			t.Errorf("silences active at %s for %q = %d, want %d", tc.at, tc.domain, got, tc.want)
		}
	}
	if err := s.ExpireSilence(ctx, d, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := count(t0.Add(2*time.Minute), "d.com"); got != 0 {
		t.Fatalf("after expire: %d active", got)
	}
	if err := s.ExpireSilence(ctx, d, t0.Add(2*time.Minute)); !errors.Is(err, ErrSilenceEnded) {
		t.Fatalf("expire twice: err = %v", err)
	}
	if err := s.ExpireSilence(ctx, 999, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expire unknown: err = %v", err)
	}
	if got, _ := s.Silence(ctx, all); got.Domain != "*" || !got.Matches("any.com") {
		t.Fatalf("silence * = %+v", got)
	}
	if _, err := s.AddSilence(ctx, Silence{Domain: "d.com", Reason: "", StartsAt: t0, EndsAt: t0.Add(time.Hour)}); err == nil {
		t.Fatal("silence without a reason accepted")
	}
}

func testFailoverLock(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	stale := 2 * time.Minute
	a := FailoverLock{Playbook: "shop-to-backup", Holder: "ann@host1", PID: 10, Host: "host1", RunID: 1, AcquiredAt: t0}
	if _, err := s.AcquireFailoverLock(ctx, a, t0.Add(-stale)); err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	b := FailoverLock{Playbook: "shop-to-backup", Holder: "bob@host2", PID: 20, Host: "host2", RunID: 2, AcquiredAt: t0.Add(time.Minute)}
	cur, err := s.AcquireFailoverLock(ctx, b, t0.Add(time.Minute-stale))
	if !errors.Is(err, ErrLocked) || cur.Holder != "ann@host1" || !strings.Contains(err.Error(), "ann@host1") {
		t.Fatalf("second acquire while live: %+v, %v", cur, err)
	}
	if err := s.HeartbeatFailoverLock(ctx, "shop-to-backup", "ann@host1", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatFailoverLock(ctx, "shop-to-backup", "bob@host2", t0.Add(2*time.Minute)); !errors.Is(err, ErrLocked) {
		t.Fatalf("heartbeat by non-holder: %v", err)
	}
	// ann's process died: no heartbeat for longer than the stale age.
	b.AcquiredAt = t0.Add(5 * time.Minute)
	cur, err = s.AcquireFailoverLock(ctx, b, b.AcquiredAt.Add(-stale))
	if err != nil || cur.Holder != "bob@host2" || cur.RunID != 2 {
		t.Fatalf("stale takeover: %+v, %v", cur, err)
	}
	if err := s.ReleaseFailoverLock(ctx, "shop-to-backup", "ann@host1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("release by old holder: %v", err)
	}
	if err := s.ReleaseFailoverLock(ctx, "shop-to-backup", "bob@host2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FailoverLock(ctx, "shop-to-backup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lock after release: %v", err)
	}

	id, err := s.CreateFailoverRun(ctx, FailoverRun{Playbook: "shop-to-backup", StartedBy: "bob", StartedAt: t0, Plan: json.RawMessage(`{"steps":2}`), Checksum: "abc", Status: "running"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.PutFailoverStep(ctx, FailoverStep{RunID: id, Index: i, Name: fmt.Sprint("step", i), Kind: "dns_update", Status: "running", StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutFailoverStep(ctx, FailoverStep{RunID: id, Index: 0, Name: "step0", Kind: "dns_update", Status: "done", Response: "NOERROR", StartedAt: t0, FinishedAt: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateFailoverRun(ctx, FailoverRun{ID: id, Status: "done", FinishedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	steps, err := s.FailoverSteps(ctx, id)
	if err != nil || len(steps) != 2 || steps[0].Status != "done" || steps[0].FinishedAt.IsZero() || !steps[1].FinishedAt.IsZero() {
		t.Fatalf("steps = %+v, %v", steps, err)
	}
	run, err := s.FailoverRun(ctx, id)
	if err != nil || run.Status != "done" || run.Checksum != "abc" || run.DryRun {
		t.Fatalf("run = %+v, %v", run, err)
	}
	if err := s.PutFailoverStep(ctx, FailoverStep{RunID: 999, Index: 0}); !errors.Is(err, ErrConflict) {
		t.Fatalf("step of unknown run: %v, want ErrConflict (foreign key)", err)
	}
}

// Failover runs started on several machines share the playbook's lock in
// one database (each its own handle here, as each process has its own
// pool): however many race for a free lock, or for one whose holder died,
// exactly one takes it, and every other is refused naming that one.
func testFailoverLockRace(t *testing.T, db testDB) {
	ctx := context.Background()
	const racers = 6
	stores := make([]Store, racers)
	for i := range stores {
		stores[i] = db.store(t)
	}
	const stale = 2 * time.Minute
	holder := ""
	for round := range 5 {
		now := t0.Add(time.Duration(round) * 10 * time.Minute)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []string
		refusedBy := map[string]int{}
		for i, s := range stores {
			me := fmt.Sprintf("racer%d@host%d", i, i)
			if me == holder {
				continue // it died holding the lock: the others race for it
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l := FailoverLock{Playbook: "shop-to-backup", Holder: me, PID: 100 + i, Host: fmt.Sprintf("host%d", i), AcquiredAt: now}
				got, err := s.AcquireFailoverLock(ctx, l, now.Add(-stale))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && got.Holder == me:
					won = append(won, me)
				case errors.Is(err, ErrLocked):
					refusedBy[got.Holder]++
				default:
					t.Errorf("round %d, %s: %+v, %v", round, me, got, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("round %d: %d racers took the lock (%v), want exactly one", round, len(won), won)
		}
		want := racers - 1 // everyone but the winner
		if holder != "" {
			want-- // and the dead holder sat it out
		}
		if len(refusedBy) != 1 || refusedBy[won[0]] != want {
			t.Fatalf("round %d: %s took the lock; the others were refused naming %v", round, won[0], refusedBy)
		}
		cur, err := stores[0].FailoverLock(ctx, "shop-to-backup")
		if err != nil || cur.Holder != won[0] || cur.HeartbeatAt.Before(now) {
			t.Fatalf("round %d: the lock is %+v, %v; %s took it", round, cur, err, won[0])
		}
		holder = won[0]
	}
}

func testInTxRollsBack(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(q Queries) error {
		if _, err := q.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "open", Payload: json.RawMessage(`{}`)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if st, _ := s.OutboxStats(ctx); st.Pending != 0 {
		t.Fatalf("rolled-back enqueue is visible: %+v", st)
	}
}

// Two Store values on one file stand for the daemon and a CLI command
// running side by side: every write must land, none may fail with
// "database is locked".
func testConcurrentWritersTwoHandles(t *testing.T, db testDB) {
	ctx := context.Background()
	s1, s2 := db.store(t), db.store(t)
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		st := Store(s1)
		if w%2 == 1 {
			st = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := st.InTx(ctx, func(q Queries) error {
					// Read, then write: the pattern that deadlocks with
					// deferred transactions.
					if _, err := q.OutboxStats(ctx); err != nil {
						return err
					}
					_, err := q.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: fmt.Sprint(w), Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
					return err
				})
				if err != nil {
					errs <- err
				}
				if _, err := st.PutObservation(ctx, Observation{Domain: fmt.Sprintf("d%d.com", w), Class: "dns", ObservedAt: t0, Data: json.RawMessage(fmt.Sprint(i))}); err != nil {
					errs <- err
				}
				if _, err := st.OutboxStats(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, err := s1.OutboxStats(ctx)
	if err != nil || st.Pending != workers*each {
		t.Fatalf("pending = %d, %v; want %d", st.Pending, err, workers*each)
	}
}

func testSlackThreads(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	if _, err := s.SlackThread(ctx, "incident:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if err := s.PutSlackThread(ctx, SlackThread{Key: "incident:1", Channel: "C1", TS: "1700000000.000100", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	th, err := s.SlackThread(ctx, "incident:1")
	if err != nil || th.Channel != "C1" || th.TS != "1700000000.000100" {
		t.Fatalf("thread = %+v, %v", th, err)
	}
}

// A CLI command and the daemon (or replicas) opening a new database at the
// same moment all get a migrated store, migrated once.
func testConcurrentOpensOfANewDatabase(t *testing.T, db testDB) {
	for i := range 20 {
		fresh := db
		if i > 0 {
			fresh = db.another(t)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := fresh.try(context.Background(), Options{})
				if err != nil {
					errs <- err
					return
				}
				if v, err := s.SchemaVersion(context.Background()); err != nil || v != LatestSchema() {
					errs <- fmt.Errorf("schema %d, %v", v, err)
				}
				s.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := fresh.store(t)
		var applied int
		if err := raw(s).QueryRowContext(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil || applied != LatestSchema() {
			t.Fatalf("schema_migrations holds %d rows, %v; want each migration once (%d)", applied, err, LatestSchema())
		}
		s.Close()
	}
}

// The incident engine's pattern from two handles at once (two replicas, or
// the daemon and a CLI command): read a domain's state, then write what
// follows from it. No update may be lost, and a problem seen by both must
// open one incident, not two.
func testReadThenWriteTransactionsSerialise(t *testing.T, db testDB) {
	ctx := context.Background()
	handles := []Store{db.store(t), db.store(t)}
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		st := handles[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := st.InTx(ctx, func(q Queries) error {
					states, err := q.FindingStates(ctx, "d.com")
					if err != nil {
						return err
					}
					s := FindingState{Domain: "d.com", Class: "dns", Key: "XT_PARENT_NS_CHANGED", Severity: "critical", FirstSeen: t0, LastSeen: t0, Data: json.RawMessage(`{}`)}
					if len(states) == 1 {
						s = states[0]
					}
					s.Streak++
					if err := q.PutFindingState(ctx, s); err != nil {
						return err
					}
					open, err := q.OpenIncidents(ctx, "d.com")
					if err != nil || len(open) > 0 {
						return err
					}
					_, err = q.CreateIncident(ctx, Incident{Domain: "d.com", Status: IncidentOpen, Severity: "critical", Title: "delegation changed",
						ThreadKey: "incident:d.com", OpenedAt: t0, UpdatedAt: t0, Data: json.RawMessage(`{}`)})
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	states, err := handles[0].FindingStates(ctx, "d.com")
	if err != nil || len(states) != 1 || states[0].Streak != workers*each {
		t.Fatalf("finding states = %+v, %v; want one with streak %d (no lost update)", states, err, workers*each)
	}
	if open, err := handles[1].OpenIncidents(ctx, "d.com"); err != nil || len(open) != 1 {
		t.Fatalf("open incidents = %d, %v; want exactly one", len(open), err)
	}
}

// A writer blocked by another's long transaction waits the busy timeout and
// then fails with ErrBusy, writing nothing; readers are never blocked.
func testWriterWaitsThenErrBusy(t *testing.T, db testDB) {
	ctx := context.Background()
	holder := db.store(t)
	other := db.open(t, Options{BusyTimeout: 300 * time.Millisecond})
	if _, err := other.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- holder.InTx(ctx, func(q Queries) error {
			if _, err := q.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "held", Payload: json.RawMessage(`{}`)}); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	if st, err := other.OutboxStats(ctx); err != nil || st.Pending != 1 {
		t.Errorf("a reader beside a writer: stats %+v, %v; want the committed message only", st, err)
	}
	start := time.Now()
	err := other.InTx(ctx, func(q Queries) error {
		_, err := q.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "blocked", Payload: json.RawMessage(`{}`)})
		return err
	})
	waited := time.Since(start)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, ErrBusy) || waited < 250*time.Millisecond || Classify(err) != FaultBusy {
		t.Fatalf("blocked writer: err = %v (%q) after %s; want ErrBusy, classified %q, after the 300ms busy timeout", err, Classify(err), waited, FaultBusy)
	}
	if st, err := other.OutboxStats(ctx); err != nil || st.Pending != 2 {
		t.Fatalf("after: stats %+v, %v; want the two committed messages", st, err)
	}
}

// Free text from outside (an HTTP error body, a DNS answer) with NUL bytes
// or invalid UTF-8 is stored, and reads back the same on both backends.
func testFreeTextIsStoredAlike(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	id, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: "t", Payload: json.RawMessage(`{"text":"caf\u00e9 \u0000"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimDue(ctx, Claim{Owner: "o", Now: t0, Until: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRetry(ctx, id, "o", 1, t0, "http 502: \x00bad gateway \xff\xfe"); err != nil {
		t.Fatal(err)
	}
	m, err := s.OutboxMessage(ctx, id)
	if err != nil || m.LastError != "http 502: bad gateway \uFFFD" || string(m.Payload) != `{"text":"caf\u00e9 \u0000"}` {
		t.Fatalf("message = %q / %s, %v", m.LastError, m.Payload, err)
	}
	run, err := s.CreateFailoverRun(ctx, FailoverRun{Playbook: "p", StartedBy: "ann", StartedAt: t0, Plan: json.RawMessage(`{}`), Status: "failed", Error: "webhook said \x00"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutFailoverStep(ctx, FailoverStep{RunID: run, Index: 0, Name: "w", Kind: "webhook", Response: "\xc3\x28", Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	steps, err := s.FailoverSteps(ctx, run)
	if err != nil || len(steps) != 1 || steps[0].Response != "\uFFFD(" {
		t.Fatalf("steps = %+v, %v", steps, err)
	}
}

func TestSQLiteWAL(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "nsguard.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode string
	if err := s.w.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// claimerEnv, set, makes TestClaimerProcess a sender process claiming from
// the database it names (sqlite:PATH or a URL) under the owner in
// claimerOwnerEnv; it prints each message it claimed and delivered.
const claimerEnv, claimerOwnerEnv = "NSGUARD_TEST_CLAIMER_DB", "NSGUARD_TEST_CLAIMER_OWNER"

// TestClaimerProcess is the child process of ClaimersInSeparateProcesses;
// run alone it does nothing.
func TestClaimerProcess(t *testing.T) {
	loc := os.Getenv(claimerEnv)
	if loc == "" {
		return
	}
	ctx := context.Background()
	var s Store
	var err error
	if path, ok := strings.CutPrefix(loc, "sqlite:"); ok {
		s, err = Open(ctx, path, Options{})
	} else {
		s, err = OpenPostgres(ctx, loc, Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	owner := os.Getenv(claimerOwnerEnv)
	for idle := 0; idle < 50; {
		now := time.Now()
		ms, err := s.ClaimDue(ctx, Claim{Owner: owner, Now: now, Until: now.Add(time.Minute), Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			idle++
			time.Sleep(2 * time.Millisecond)
			continue
		}
		idle = 0
		for _, m := range ms {
			if err := s.MarkDelivered(ctx, m.ID, owner, 1, now); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("claimed %d\n", m.ID)
		}
	}
}

// Three sender processes (this test binary, re-run) share one database:
// each message is claimed and delivered by exactly one of them.
func testClaimersInSeparateProcesses(t *testing.T, db testDB) {
	ctx := context.Background()
	s := db.store(t)
	const messages = 150
	for i := range messages {
		if _, err := s.Enqueue(ctx, OutboxMessage{CreatedAt: t0, Kind: "k", ThreadKey: fmt.Sprint("t", i%5), Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for p := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestClaimerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), claimerEnv+"="+db.location, claimerOwnerEnv+"="+fmt.Sprint("process-", p))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	claimedBy := map[int64]int{}
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", p, err, outs[p])
		}
		sc := bufio.NewScanner(outs[p])
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "claimed "); ok {
				id, _ := strconv.ParseInt(rest, 10, 64)
				if prev, dup := claimedBy[id]; dup {
					t.Errorf("message %d claimed by processes %d and %d", id, prev, p)
				}
				claimedBy[id] = p
			}
		}
	}
	if len(claimedBy) != messages {
		t.Fatalf("%d of %d messages delivered", len(claimedBy), messages)
	}
	if st, err := s.OutboxStats(ctx); err != nil || st.Pending != 0 {
		t.Fatalf("after: %+v, %v", st, err)
	}
}
