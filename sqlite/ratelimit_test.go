package sqlite_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// The janitor's purge deletes the rows of keys whose bucket is full again
// (the same as no row) and keeps the others; a round with nothing to
// delete deletes nothing.
func TestPurgeIdleRateLimitsKeepsBusyKeys(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	db, _ := open(t, sqlite.Options{Now: now})
	lim := db.RateLimiter()
	ctx := context.Background()
	minute := orderflow.Rate{Limit: 60, Window: time.Minute} // 1 s per unit
	hour := orderflow.Rate{Limit: 1, Window: time.Hour}
	for _, k := range []struct {
		key  string
		rate orderflow.Rate
	}{{"orders:idle", minute}, {"orders:busy", hour}} {
		if d, err := lim.Take(ctx, k.key, k.rate, now()); err != nil || !d.Allowed {
			t.Fatalf("Take(%s): %+v, %v", k.key, d, err)
		}
	}
	// A take returns once it ran, before its transaction commits; a write
	// that waits for its commit, queued after the takes, commits them too.
	if err := db.SetStock(ctx, "barrier", 1); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PurgeIdleRateLimits(ctx); err != nil || n != 0 {
		t.Fatalf("purge while both buckets fill: %d, %v; want 0", n, err)
	}
	clock.Add(int64(2 * time.Second))
	if n, err := db.PurgeIdleRateLimits(ctx); err != nil || n != 1 {
		t.Fatalf("purge once one bucket is full again: %d, %v; want 1", n, err)
	}
	if n, err := db.PurgeIdleRateLimits(ctx); err != nil || n != 0 {
		t.Errorf("purge again: %d, %v; want 0", n, err)
	}
	if d, err := lim.Take(ctx, "orders:busy", hour, now()); err != nil || d.Allowed {
		t.Errorf("the busy key after the purge: %+v, %v; want still denied", d, err)
	}
}
