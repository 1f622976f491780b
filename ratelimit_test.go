package orderflow_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/storetest"
)

func TestMemoryRateLimiterContract(t *testing.T) {
	storetest.TestRateLimiter(t, func(t *testing.T) (orderflow.RateLimiter, orderflow.RateLimiter) {
		l := orderflow.NewMemoryRateLimiter()
		return l, l // one process: both callers share its memory
	})
}

func TestRateTake(t *testing.T) {
	r := orderflow.Rate{Limit: 4, Window: time.Minute} // 15 s per unit
	now := time.Unix(1000, 0)
	t0 := now.UnixNano()
	for _, tt := range []struct {
		name     string
		tat      int64
		wantTAT  int64
		decision orderflow.RateDecision
	}{
		{"a key never seen starts one interval ahead of now", 0, t0 + int64(15*time.Second),
			orderflow.RateDecision{Allowed: true, Remaining: 3, Reset: 15 * time.Second}},
		{"a tat in the past counts as now", t0 - int64(time.Hour), t0 + int64(15*time.Second),
			orderflow.RateDecision{Allowed: true, Remaining: 3, Reset: 15 * time.Second}},
		{"the last unit is allowed at the ceiling", r.Ceiling(t0), t0 + int64(time.Minute),
			orderflow.RateDecision{Allowed: true, Remaining: 0, Reset: time.Minute}},
		{"above the ceiling it is denied until the tat falls back to it", r.Ceiling(t0) + 1, r.Ceiling(t0) + 1,
			orderflow.RateDecision{Reset: 45*time.Second + 1, RetryAfter: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tat, d := r.Take(tt.tat, now)
			if tat != tt.wantTAT || d != tt.decision {
				t.Errorf("Take(%d) = %d, %+v; want %d, %+v", tt.tat, tat, d, tt.wantTAT, tt.decision)
			}
		})
	}
}
