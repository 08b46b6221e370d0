package failover

import (
	"context"
	"fmt"
	"time"
)

// wait: pause between steps (a TTL to run out, a cache to drain) without
// holding anything but the lock, whose heartbeat goes on.
func (e *Engine) execWait(ctx context.Context, sp *StepPlan) (request, response string, err error) {
	d := sp.step.Wait.D()
	request = fmt.Sprintf("wait %s", *sp.step.Wait)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return request, "", ctx.Err()
	case <-t.C:
	}
	return request, fmt.Sprintf("waited %s", *sp.step.Wait), nil
}
