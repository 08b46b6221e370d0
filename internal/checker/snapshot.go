package checker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/internal/store"
	"github.com/nsguard/nsguard/monitor"
	"github.com/nsguard/nsguard/registry"
)

// Snapshot is what the daemon stores per domain and check class: the
// observation without its volatile fields, every finding of the class (the
// checks' and the baseline's), and why the class could not run, if so.
type Snapshot struct {
	DNS          *monitor.Observation `json:"dns,omitempty"`
	Registration *registry.Record     `json:"registration,omitempty"`
	// Registrant is the registrant organisation ("" when redacted or unknown).
	Registrant    string            `json:"registrant,omitempty"`
	Findings      []finding.Finding `json:"findings"`
	Error         string            `json:"error,omitempty"`
	NotRegistered bool              `json:"not_registered,omitempty"`
}

// NewSnapshot builds the stored form of one class of a result.
func NewSnapshot(class string, r Result, findings []finding.Finding, registrant func(*registry.Record) string) Snapshot {
	s := Snapshot{Findings: findings}
	if s.Findings == nil {
		s.Findings = []finding.Finding{}
	}
	switch class {
	case DNS:
		if r.DNS != nil {
			s.DNS = r.DNS.Stable()
		}
		if r.DNSErr != nil {
			s.Error = r.DNSErr.Error()
		}
	case Registration:
		if r.Registration != nil {
			if registrant != nil {
				s.Registrant = registrant(r.Registration)
			}
			rec := r.Registration.Baseline() // no raw answers, no timings
			s.Registration = &rec
		}
		if err := r.RegErr; err != nil || r.RegLookupErr != nil {
			if err == nil {
				err = r.RegLookupErr
			}
			s.Error = err.Error()
			s.NotRegistered = errors.Is(err, registry.ErrNotRegistered)
		}
	}
	return s
}

// Put stores a snapshot as the latest observation of its domain and class.
func Put(ctx context.Context, q store.Queries, domain, class string, at time.Time, s Snapshot) (bool, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return false, fmt.Errorf("encode %s observation of %s: %w", class, domain, err)
	}
	return q.PutObservation(ctx, store.Observation{Domain: domain, Class: class, ObservedAt: at, Data: data})
}

// Latest loads the latest snapshot of every domain for class.
func Latest(ctx context.Context, q store.Queries, class string) (map[string]Snapshot, map[string]time.Time, error) {
	obs, err := q.LatestObservations(ctx, class)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]Snapshot, len(obs))
	at := make(map[string]time.Time, len(obs))
	for _, o := range obs {
		var s Snapshot
		if err := json.Unmarshal(o.Data, &s); err != nil {
			return nil, nil, fmt.Errorf("decode %s observation of %s: %w", class, o.Domain, err)
		}
		out[o.Domain], at[o.Domain] = s, o.ObservedAt
	}
	return out, at, nil
}
