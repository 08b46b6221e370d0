package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/internal/store/pgtest"
	"github.com/nsguard/nsguard/internal/store/storetest"
)

func openPair(t *testing.T) (*store.SQLite, *store.Postgres) {
	t.Helper()
	ctx := context.Background()
	lite, err := store.Open(ctx, filepath.Join(t.TempDir(), "nsguard.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	pg, err := store.OpenPostgres(ctx, pgtest.Database(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return lite, pg
}

// What was written through the API on SQLite reads back identically through
// the PostgreSQL store, and new rows there get new ids.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	lite, pg := openPair(t)
	lastOutbox := storetest.Fill(t, lite)
	want := storetest.Dump(t, lite)
	if len(want.Outbox) < 4 || len(want.Incidents) != 3 || len(want.Steps) != 2 || len(want.Locks) != 1 || len(want.Heartbeats) != 2 {
		t.Fatalf("the filled store is thinner than it should be: %+v", want)
	}
	res, err := store.CopyToPostgres(ctx, lite, pg, store.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.SchemaVersion != store.LatestSchema() || len(res.Tables) != 13 {
		t.Fatalf("result = %+v", res)
	}
	rows := map[string]int64{}
	for _, tc := range res.Tables {
		rows[tc.Table] = tc.Rows
	}
	// Fill's prune took 3 history rows and 2 delivered messages.
	for table, n := range map[string]int64{"observations": 6, "observation_history": 15, "baselines": 6, "changes": 3, "finding_states": 6,
		"incidents": 3, "outbox": 4, "slack_threads": 3, "silences": 2, "failover_runs": 2, "failover_steps": 4, "failover_locks": 1, "heartbeats": 2} {
		if rows[table] != n {
			t.Errorf("copied %d rows of %s, want %d", rows[table], table, n)
		}
	}
	storetest.Equal(t, want, storetest.Dump(t, pg))

	// Ids continue past the highest ever given, the pruned message's too.
	id, err := pg.Enqueue(ctx, store.OutboxMessage{CreatedAt: storetest.T0, Kind: "k", Payload: json.RawMessage(`{}`)})
	if err != nil || id != lastOutbox+1 {
		t.Fatalf("first new message id = %d, %v; want %d (past the pruned %d)", id, err, lastOutbox+1, lastOutbox)
	}
	inc, err := pg.CreateIncident(ctx, store.Incident{Domain: "new.com", Status: store.IncidentOpen, Severity: "warning", OpenedAt: storetest.T0, UpdatedAt: storetest.T0, Data: json.RawMessage(`{}`)})
	if err != nil || inc != 4 {
		t.Fatalf("first new incident id = %d, %v; want 4", inc, err)
	}
	if _, err := pg.PutObservation(ctx, store.Observation{Domain: "new.com", Class: "dns", ObservedAt: storetest.T0, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatalf("a new observation after the copy: %v", err)
	}

	// A second copy finds the target in use and changes nothing...
	if _, err := store.CopyToPostgres(ctx, lite, pg, store.CopyOptions{}); err == nil || !strings.Contains(err.Error(), "the target database is not empty: it holds rows in observations (7)") {
		t.Fatalf("copy into a non-empty target: err = %v", err)
	}
	if n, _ := pg.LastOutboxID(ctx); n != lastOutbox+1 {
		t.Fatalf("the refused copy changed the target: last outbox id %d", n)
	}
	// ...unless forced, which replaces what it holds.
	if _, err := store.CopyToPostgres(ctx, lite, pg, store.CopyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	storetest.Equal(t, want, storetest.Dump(t, pg))
	if id, err := pg.Enqueue(ctx, store.OutboxMessage{CreatedAt: storetest.T0, Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil || id != lastOutbox+1 {
		t.Fatalf("after a forced copy: new message id = %d, %v; want %d", id, err, lastOutbox+1)
	}
}

// A row PostgreSQL cannot store stops the copy with a message naming it,
// and the target stays empty: all or nothing.
func TestCopyRefusesWhatPostgresCannotStore(t *testing.T) {
	ctx := context.Background()
	lite, pg := openPair(t)
	storetest.Fill(t, lite)
	// Written before nsguard cleaned free text: invalid UTF-8 in an error.
	if _, err := lite.Enqueue(ctx, store.OutboxMessage{CreatedAt: storetest.T0, Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := store.ExecSQLiteForTest(ctx, lite, "UPDATE outbox SET last_error = CAST(X'68747470FF' AS TEXT) WHERE id = (SELECT MAX(id) FROM outbox)"); err != nil {
		t.Fatal(err)
	}
	_, err := store.CopyToPostgres(ctx, lite, pg, store.CopyOptions{})
	if err == nil || !strings.Contains(err.Error(), "table outbox, row id = 7: column last_error holds bytes PostgreSQL cannot store as text") {
		t.Fatalf("err = %v", err)
	}
	if n, err := pg.LastOutboxID(ctx); err != nil || n != 0 {
		t.Fatalf("after a failed copy the target holds outbox rows up to %d, %v", n, err)
	}
	if obs, err := pg.LatestObservations(ctx, "dns"); err != nil || len(obs) != 0 {
		t.Fatalf("after a failed copy the target holds %d observations, %v", len(obs), err)
	}
}

// A copy taken while a writer keeps writing the source is one consistent
// snapshot.
func TestCopyReadsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	lite, pg := openPair(t)
	for i := range 200 {
		if _, err := lite.Enqueue(ctx, store.OutboxMessage{CreatedAt: storetest.T0, Kind: "k", ThreadKey: "t", IncidentID: int64(i), Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = lite.InTx(ctx, func(q store.Queries) error {
				if _, err := q.Enqueue(ctx, store.OutboxMessage{CreatedAt: storetest.T0, Kind: "k", Payload: json.RawMessage(`{}`)}); err != nil {
					return err
				}
				_, err := q.AddChange(ctx, store.Change{Domain: "d.com", Class: "dns", DetectedAt: storetest.T0, Data: json.RawMessage(`{}`)})
				return err
			})
			time.Sleep(time.Millisecond)
		}
	}()
	res, err := store.CopyToPostgres(ctx, lite, pg, store.CopyOptions{})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, tc := range res.Tables {
		rows[tc.Table] = tc.Rows
	}
	// Every writer transaction adds one message and one change: a snapshot
	// holds as many writer-made messages as changes.
	if rows["outbox"]-200 != rows["changes"] {
		t.Fatalf("copied %d outbox rows and %d changes: not one snapshot", rows["outbox"], rows["changes"])
	}
}
