// Package storetest fills a store with one of everything through the
// store API and reads it all back the same way, so tests of whatever moves
// a store (nsguard store migrate; later backup and restore) can compare
// two stores: what was written must read back identically.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nsguard/nsguard/internal/store"
)

// T0 is the clock Fill writes with.
var T0 = time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)

// Domains and Classes are what Fill writes observations for; Playbooks and
// ThreadKeys name its failover locks and Slack threads.
var (
	Domains    = []string{"shop-example.com", "api-example.net", "café-example.org"}
	Classes    = []string{"dns", "registration"}
	Playbooks  = []string{"shop-to-backup", "api-to-backup"}
	ThreadKeys = []string{"incident:1", "incident:2", "failover:1"}
)

// Fill writes one of everything through s's API: observations with
// history, baseline versions, changes, finding states (present and
// absent), incidents (open, acknowledged, resolved), outbox messages in
// every state (pending, claimed, retried, delivered, dead, and one
// delivered then pruned, so ids have a gap), Slack threads, silences
// (active and expired), failover runs, steps and a lock, heartbeats. Text includes
// non-ASCII. It returns the highest outbox id handed out.
func Fill(tb testing.TB, s store.Store) (lastOutboxID int64) {
	tb.Helper()
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	js := func(format string, args ...any) json.RawMessage { return json.RawMessage(fmt.Sprintf(format, args...)) }
	for i, d := range Domains {
		for j, c := range Classes {
			for k, ns := range []string{"ns1.provider-a.net", "ns1.evil.example", "ns1.provider-a.net"} {
				_, err := s.PutObservation(ctx, store.Observation{Domain: d, Class: c, ObservedAt: T0.Add(time.Duration(i*100+j*10+k) * time.Minute),
					Data: js(`{"ns":[%q],"note":"résumé ✓"}`, ns)})
				must(err)
			}
		}
		for v := range 2 {
			_, err := s.ApproveBaseline(ctx, store.Baseline{Domain: d, Data: js(`{"v":%d}`, v), ApprovedBy: "ann", ApprovedAt: T0.Add(time.Duration(v) * time.Hour), Reason: "initial — ✓"})
			must(err)
		}
		_, err := s.AddChange(ctx, store.Change{Domain: d, Class: "dns", DetectedAt: T0, BaselineVersion: 2, Data: js(`{"field":"ns","i":%d}`, i)})
		must(err)
		must(s.PutFindingState(ctx, store.FindingState{Domain: d, Class: "dns", Key: "XT_PARENT_NS_CHANGED", Severity: "critical", Streak: 2, FirstSeen: T0, LastSeen: T0.Add(time.Minute), Data: js(`{"id":"XT_PARENT_NS_CHANGED"}`)}))
		must(s.PutFindingState(ctx, store.FindingState{Domain: d, Class: "dns", Key: "XT_NS_LAME|ns2", Severity: "warning", Streak: 0, Absent: 1, FirstSeen: T0, LastSeen: T0, Data: js(`{}`)}))
	}

	var incs []int64
	for i, d := range Domains {
		inc := store.Incident{Domain: d, Status: store.IncidentOpen, Severity: "critical", Title: "delegation changed — " + d, ThreadKey: fmt.Sprintf("incident:%d", i+1),
			Channel: "#dns-oncall", OpenedAt: T0, UpdatedAt: T0.Add(time.Minute), PagedAt: T0, LastNotifiedAt: T0, Notifications: 1, Data: js(`{"findings":[%d]}`, i)}
		id, err := s.CreateIncident(ctx, inc)
		must(err)
		incs = append(incs, id)
		inc.ID = id
		switch i {
		case 1:
			inc.AckedAt, inc.AckedBy, inc.AckReason = T0.Add(2*time.Minute), "bob", "on it"
			must(s.UpdateIncident(ctx, inc))
		case 2:
			inc.Status, inc.ResolvedAt = store.IncidentResolved, T0.Add(time.Hour)
			must(s.UpdateIncident(ctx, inc))
		}
	}

	enq := func(thread string, incident int64, at time.Time) int64 {
		id, err := s.Enqueue(ctx, store.OutboxMessage{CreatedAt: at, Kind: "page", Channel: "#dns-oncall", ThreadKey: thread, IncidentID: incident,
			Payload: js(`{"text":"hijack of %s ⚠"}`, thread)})
		must(err)
		return id
	}
	claim := func(owner string, want int64, now time.Time) {
		tb.Helper()
		ms, err := s.ClaimDue(ctx, store.Claim{Owner: owner, Epoch: 3, Now: now, Until: now.Add(time.Minute)})
		must(err)
		for _, m := range ms {
			if m.ID == want {
				return
			}
		}
		tb.Fatalf("storetest: message %d not claimable by %s (got %+v)", want, owner, ms)
	}
	delivered := enq("incident:1", incs[0], T0)
	claim("daemon", delivered, T0)
	must(s.MarkDelivered(ctx, delivered, "daemon", 1, T0.Add(time.Second)))
	dead := enq("incident:2", incs[1], T0)
	claim("daemon", dead, T0)
	must(s.MarkDead(ctx, dead, "daemon", 5, T0.Add(time.Minute), "channel_not_found"))
	retried := enq("incident:1", incs[0], T0.Add(time.Minute))
	claim("daemon", retried, T0.Add(time.Minute))
	must(s.MarkRetry(ctx, retried, "daemon", 1, T0.Add(2*time.Minute), "http 503 — try later"))
	enq("incident:1", incs[0], T0.Add(2*time.Minute)) // waits behind the retried one
	claimed := enq("", 0, T0.Add(3*time.Minute))
	claim("cli", claimed, T0.Add(3*time.Minute))
	// The newest message is delivered and pruned: the highest id ever
	// handed out is no longer in the table.
	pruned := enq("failover:1", 0, T0.Add(4*time.Minute))
	claim("daemon", pruned, T0.Add(4*time.Minute))
	must(s.MarkDelivered(ctx, pruned, "daemon", 1, T0.Add(4*time.Minute)))
	if _, err := s.Prune(ctx, T0.Add(4*time.Minute+time.Second)); err != nil {
		tb.Fatal(err)
	}

	for i, k := range ThreadKeys {
		must(s.PutSlackThread(ctx, store.SlackThread{Key: k, Channel: "C0" + fmt.Sprint(i), TS: fmt.Sprintf("17000000%02d.000100", i), CreatedAt: T0}))
	}
	_, err := s.AddSilence(ctx, store.Silence{Domain: "*", CreatedBy: "ann", Reason: "resolver maintenance", CreatedAt: T0, StartsAt: T0, EndsAt: T0.Add(time.Hour)})
	must(err)
	sid, err := s.AddSilence(ctx, store.Silence{Domain: Domains[0], CreatedBy: "bob", Reason: "registrar migration CHG-1 — ✓", CreatedAt: T0, StartsAt: T0, EndsAt: T0.Add(2 * time.Hour)})
	must(err)
	must(s.ExpireSilence(ctx, sid, T0.Add(time.Minute)))

	for i, pb := range Playbooks {
		run, err := s.CreateFailoverRun(ctx, store.FailoverRun{Playbook: pb, StartedBy: "ann", StartedAt: T0, DryRun: i == 1, Plan: js(`{"steps":2}`), Checksum: "sha256:abc", Status: "running"})
		must(err)
		for step := range 2 {
			must(s.PutFailoverStep(ctx, store.FailoverStep{RunID: run, Index: step, Name: fmt.Sprint("step ", step), Kind: "dns_update", Request: "UPDATE api.switch.example.",
				Response: "NOERROR", Status: "done", StartedAt: T0, FinishedAt: T0.Add(time.Second)}))
		}
		must(s.UpdateFailoverRun(ctx, store.FailoverRun{ID: run, Status: "done", FinishedAt: T0.Add(time.Minute)}))
	}
	_, err = s.AcquireFailoverLock(ctx, store.FailoverLock{Playbook: Playbooks[0], Holder: "ann@host1", PID: 4242, Host: "host1", RunID: 1, AcquiredAt: T0}, T0.Add(-time.Minute))
	must(err)
	must(s.Heartbeat(ctx, "daemon@host1", T0.Add(5*time.Minute), "nsguard 1.4.0"))
	must(s.Heartbeat(ctx, "probe@vantage-hk", T0.Add(5*time.Minute), "nsguard 1.4.0 — probe"))
	return pruned
}

// Snapshot is everything a store holds, read through its API.
type Snapshot struct {
	Observations  []store.Observation
	History       [][]store.Observation
	Baselines     [][]store.Baseline
	Changes       []store.Change
	FindingStates [][]store.FindingState
	Incidents     []store.Incident
	Outbox        []store.OutboxMessage
	OutboxStats   store.OutboxStats
	Threads       []store.SlackThread
	Silences      []store.Silence
	Runs          []store.FailoverRun
	Steps         [][]store.FailoverStep
	Locks         []store.FailoverLock
	Heartbeats    []store.HeartbeatRow
}

// Dump reads everything Fill writes back through s's API.
func Dump(tb testing.TB, s store.Store) Snapshot {
	tb.Helper()
	ctx := context.Background()
	var snap Snapshot
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	for _, c := range Classes {
		obs, err := s.LatestObservations(ctx, c)
		must(err)
		snap.Observations = append(snap.Observations, obs...)
		for _, d := range Domains {
			h, err := s.ObservationHistory(ctx, d, c, 1000)
			must(err)
			snap.History = append(snap.History, h)
		}
	}
	for _, d := range Domains {
		bs, err := s.Baselines(ctx, d)
		must(err)
		snap.Baselines = append(snap.Baselines, bs)
		fs, err := s.FindingStates(ctx, d)
		must(err)
		snap.FindingStates = append(snap.FindingStates, fs)
	}
	var err error
	snap.Changes, err = s.Changes(ctx, "", 1000)
	must(err)
	snap.Incidents, err = s.Incidents(ctx, store.IncidentFilter{})
	must(err)
	snap.Outbox, err = s.OutboxMessages(ctx, 0, 1000)
	must(err)
	snap.OutboxStats, err = s.OutboxStats(ctx)
	must(err)
	for _, k := range ThreadKeys {
		th, err := s.SlackThread(ctx, k)
		must(err)
		snap.Threads = append(snap.Threads, th)
	}
	snap.Silences, err = s.Silences(ctx, store.SilenceFilter{})
	must(err)
	snap.Runs, err = s.FailoverRuns(ctx, "", 100)
	must(err)
	for _, r := range snap.Runs {
		steps, err := s.FailoverSteps(ctx, r.ID)
		must(err)
		snap.Steps = append(snap.Steps, steps)
	}
	for _, pb := range Playbooks {
		l, err := s.FailoverLock(ctx, pb)
		if err == nil {
			snap.Locks = append(snap.Locks, l)
		}
	}
	snap.Heartbeats, err = s.Heartbeats(ctx)
	must(err)
	return snap
}

// Equal fails tb, naming the first part that differs, unless a and b hold
// the same.
func Equal(tb testing.TB, a, b Snapshot) {
	tb.Helper()
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			tb.Errorf("%s differ:\n%+v\n%+v", va.Type().Field(i).Name, va.Field(i).Interface(), vb.Field(i).Interface())
		}
	}
}
