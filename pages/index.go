package pages

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

// The overview of 10,000 domains cannot decode 10,000 stored observations
// per request, nor read them from the store every second. The index keeps,
// per domain and class, the little the overview shows (worst severity,
// finding IDs, registrar, expiry), plus the open incidents and silences.
// It is read from the store in full once, then kept current from the
// daemon's feed (Source.Feed): when each domain was checked, and which
// observations changed, which alone are read again. Without a feed, or
// every indexFullEvery, it is read in full again.
//
// A request reads a built index; one older than indexFresh is refreshed
// in the background while the request is served from it (a reloading page
// sees the new state a second later), and one older than indexMaxAge is
// refreshed before answering.
const (
	indexFresh     = time.Second
	indexMaxAge    = 30 * time.Second
	indexFullEvery = 10 * time.Minute
	// indexBuildTimeout bounds one rebuild.
	indexBuildTimeout = 30 * time.Second
)

// part is what the overview needs of one class of one domain.
type part struct {
	observedAt, changedAt time.Time
	worst                 finding.Severity
	// ids are the finding IDs at warning or worse, worst first, once each;
	// accepted counts accepted risk (approved with the baseline), which
	// neither raises worst nor is listed.
	ids           []string
	accepted      int
	err           string
	notRegistered bool
	registrar     string
	expiry        time.Time
}

// view is one built index.
type view struct {
	builtAt  time.Time
	dns      map[string]*part
	reg      map[string]*part
	open     map[string][]Incident
	silences []store.Silence
}

type index struct {
	src Source
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	cur      *view
	building chan struct{} // closed when the running build ends; nil when none runs
	lastErr  error
	lastFull time.Time
}

func newIndex(src Source, log *slog.Logger, now func() time.Time) *index {
	return &index{src: src, log: log, now: now}
}

// get returns a built index, building or refreshing it as described above.
func (x *index) get(ctx context.Context) (*view, error) {
	x.mu.Lock()
	cur := x.cur
	age := time.Duration(0)
	if cur != nil {
		age = x.now().Sub(cur.builtAt)
	}
	if cur != nil && age < indexFresh {
		x.mu.Unlock()
		return cur, nil
	}
	done := x.building
	if done == nil {
		done = make(chan struct{})
		x.building = done
		go x.build(done)
	}
	x.mu.Unlock()
	if cur != nil && age < indexMaxAge {
		return cur, nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cur == nil {
		return nil, x.lastErr
	}
	return x.cur, nil
}

func (x *index) build(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), indexBuildTimeout)
	defer cancel()
	x.mu.Lock()
	prev := x.cur
	x.mu.Unlock()
	v, err := x.load(ctx, prev)
	x.mu.Lock()
	if err != nil {
		x.lastErr = err
		x.log.Error("pages: reading the store for the overview", "err", err)
	} else {
		x.cur, x.lastErr = v, nil
	}
	x.building = nil
	x.mu.Unlock()
	close(done)
}

func (x *index) load(ctx context.Context, prev *view) (*view, error) {
	v := &view{builtAt: x.now(), open: map[string][]Incident{}}
	feed, fed := x.src.Feed()
	if prev != nil && fed && v.builtAt.Sub(x.lastFull) < indexFullEvery {
		if err := x.apply(ctx, v, prev, feed); err != nil {
			return nil, err
		}
	} else {
		if err := x.loadAll(ctx, v, prev); err != nil {
			return nil, err
		}
		x.lastFull = v.builtAt
	}
	open, err := x.src.Incidents(ctx, IncidentFilter{Status: StatusOpen})
	if err != nil {
		return nil, err
	}
	for _, i := range open {
		v.open[i.Domain] = append(v.open[i.Domain], i)
	}
	if v.silences, err = x.src.Silences(ctx, v.builtAt); err != nil {
		return nil, err
	}
	return v, nil
}

// apply builds v from prev and the feed, reading only changed observations.
func (x *index) apply(ctx context.Context, v, prev *view, f Feed) error {
	v.dns, v.reg = maps.Clone(prev.dns), maps.Clone(prev.reg)
	into := func(class string) map[string]*part {
		if class == checker.Registration {
			return v.reg
		}
		return v.dns
	}
	for k := range f.Dirty {
		o, err := x.src.Observation(ctx, k.Domain, k.Class)
		if errors.Is(err, ErrNotFound) {
			delete(into(k.Class), k.Domain)
			continue
		}
		if err != nil {
			return err
		}
		into(k.Class)[k.Domain] = x.decode(o)
	}
	for k, at := range f.Seen {
		m := into(k.Class)
		if p := m[k.Domain]; p != nil && !f.Dirty[k] && at.After(p.observedAt) {
			c := *p
			c.observedAt = at
			m[k.Domain] = &c
		}
	}
	return nil
}

func (x *index) decode(o Observed) *part {
	sn, err := o.Snapshot()
	if err != nil {
		x.log.Warn("pages: an unreadable stored observation", "domain", o.Domain, "class", o.Class, "err", err)
		return &part{observedAt: o.ObservedAt, changedAt: o.ChangedAt, err: "unreadable stored observation"}
	}
	return partOf(o, sn)
}

// loadAll reads every observation, decoding only those that changed since
// prev.
func (x *index) loadAll(ctx context.Context, v, prev *view) error {
	v.dns, v.reg = map[string]*part{}, map[string]*part{}
	for _, c := range []struct {
		class string
		into  map[string]*part
		old   map[string]*part
	}{{checker.DNS, v.dns, nil}, {checker.Registration, v.reg, nil}} {
		if prev != nil {
			c.old = prev.dns
			if c.class == checker.Registration {
				c.old = prev.reg
			}
		}
		obs, err := x.src.Latest(ctx, c.class)
		if err != nil {
			return err
		}
		for _, o := range obs {
			if old := c.old[o.Domain]; old != nil && old.changedAt.Equal(o.ChangedAt) {
				p := *old
				p.observedAt = o.ObservedAt
				c.into[o.Domain] = &p
				continue
			}
			c.into[o.Domain] = x.decode(o)
		}
	}
	return nil
}

func partOf(o Observed, sn *checker.Snapshot) *part {
	p := &part{observedAt: o.ObservedAt, changedAt: o.ChangedAt, err: sn.Error, notRegistered: sn.NotRegistered}
	fs := slices.Clone(sn.Findings)
	finding.Sort(fs)
	seen := map[string]bool{}
	for _, f := range fs {
		if f.Accepted {
			p.accepted++
			continue
		}
		p.worst = max(p.worst, f.Severity)
		if f.Severity >= finding.Warning && !seen[f.ID] {
			seen[f.ID] = true
			p.ids = append(p.ids, f.ID)
		}
	}
	if r := sn.Registration; r != nil {
		p.registrar = r.Registrar.String()
		if r.Registrar.Name == "" && r.Registrar.IANAID == "" {
			p.registrar = ""
		}
		p.expiry = r.Expiry
	}
	return p
}
