package orderflow

import (
	"context"
	"time"
)

// checkTimeout bounds one run of a CachedCheck's check.
const checkTimeout = 2 * time.Second

// CachedCheck runs a readiness check (such as the pings of a queue and a
// store) at most once per TTL and answers from its last result in
// between, so that probes, however often they ask, cannot hammer what it
// checks. One caller at a time runs the check, bounded by 2 s; the others
// wait for its result. The result of a run whose caller gave up is not
// kept. Safe for concurrent use.
type CachedCheck struct {
	ttl   time.Duration
	now   func() time.Time
	check func(context.Context) error
	sem   chan struct{} // held while the last result is read or renewed

	at  time.Time
	err error
	ok  bool // at and err hold a result
}

// NewCachedCheck returns a CachedCheck of check whose results last ttl by
// the clock now.
func NewCachedCheck(ttl time.Duration, now func() time.Time, check func(context.Context) error) *CachedCheck {
	return &CachedCheck{ttl: ttl, now: now, check: check, sem: make(chan struct{}, 1)}
}

// Check returns the last result if it is younger than the TTL, else runs
// the check. It returns ctx's error if ctx ends while it waits its turn.
func (c *CachedCheck) Check(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.ok && c.now().Sub(c.at) < c.ttl {
		return c.err
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := c.check(cctx)
	if ctx.Err() != nil {
		return err // the caller gave up; its cancellation says nothing
	}
	c.at, c.err, c.ok = c.now(), err, true
	return err
}
