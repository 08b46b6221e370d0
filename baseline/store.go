package baseline

import (
	"context"
	"fmt"
	"time"

	"github.com/nsguard/nsguard/internal/checker"
	"github.com/nsguard/nsguard/internal/store"
)

// Save records s as the domain's next approved version.
func Save(ctx context.Context, q store.Queries, s *State, by, reason string, at time.Time) (store.Baseline, error) {
	data, err := s.Marshal()
	if err != nil {
		return store.Baseline{}, fmt.Errorf("encode baseline of %s: %w", s.Domain, err)
	}
	return q.ApproveBaseline(ctx, store.Baseline{Domain: s.Domain, Data: data, ApprovedBy: by, ApprovedAt: at, Reason: reason})
}

// Load returns the latest approved state of domain (store.ErrNotFound when
// none was approved).
func Load(ctx context.Context, q store.Queries, domain string) (*State, store.Baseline, error) {
	b, err := q.LatestBaseline(ctx, domain)
	if err != nil {
		return nil, b, err
	}
	s, err := Unmarshal(b.Data)
	if err != nil {
		return nil, b, fmt.Errorf("decode baseline %d of %s: %w", b.Version, domain, err)
	}
	return s, b, nil
}

// StateOf is the approvable state of a check result, with the posture
// findings it would accept.
func StateOf(r checker.Result) *State {
	return &State{Domain: r.Domain.Name, DNS: FromObservation(r.DNS), Registration: FromRecord(r.Registration), Accepted: AcceptedOf(r.Findings)}
}

// Latest returns each domain's latest approved state; a baseline that does
// not decode is left out.
func Latest(ctx context.Context, q store.Queries) (map[string]*State, error) {
	bs, err := q.LatestBaselines(ctx)
	if err != nil {
		return nil, err
	}
	states := map[string]*State{}
	for _, b := range bs {
		if s, err := Unmarshal(b.Data); err == nil {
			states[b.Domain] = s
		}
	}
	return states, nil
}
