// Package sqlitetest holds what the benchmarks of more than one package do
// to an embedded-mode database.
package sqlitetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// Process does to n orders of db's queue what the processor does, and
// returns when they are COMPLETED: 16 pollers receive batches of 10
// (PENDING → PROCESSING) and handle each message in a goroutine of its
// own, like the processor's bounded concurrency: reserve one "widget",
// record the charge, PROCESSING → COMPLETED, delete. The orders must each
// hold one widget and the stock must suffice.
func Process(tb testing.TB, db *sqlite.DB, n int64) {
	ctx := context.Background()
	wq := db.WorkQueue()
	handle := func(d orderflow.Delivery) error {
		now := time.Now()
		if o, err := wq.StartOrder(ctx, d.OrderID, now); err != nil || o.Status != orderflow.StatusProcessing {
			return fmt.Errorf("delivery of %s: order %+v, %v; want it started", d.OrderID, o, err)
		}
		if f, err := db.Reserve(ctx, d.OrderID, []orderflow.Item{{SKU: "widget", Quantity: 1}}); err != nil || f != nil {
			return fmt.Errorf("reserve: %v %v", f, err)
		}
		c := orderflow.Charge{ID: "ch_" + string(d.OrderID), IdempotencyKey: string(d.OrderID), OrderID: d.OrderID, Amount: 1999, Currency: "USD"}
		if _, _, err := db.RecordCharge(ctx, c); err != nil {
			return err
		}
		if _, err := db.Transition(ctx, orderflow.Transition{ID: d.OrderID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: now}); err != nil {
			return err
		}
		return db.Delete(ctx, d.Receipt)
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for done.Load() < n {
				ds, err := wq.Receive(ctx, 10, 50*time.Millisecond)
				if err != nil {
					tb.Error(err)
					return
				}
				var inner sync.WaitGroup
				for _, d := range ds {
					inner.Go(func() {
						if err := handle(d); err != nil {
							tb.Error(err)
						}
						done.Add(1)
					})
				}
				inner.Wait()
			}
		})
	}
	wg.Wait()
}

// CPUTime returns the user+system CPU time this process has used, so that
// benchmarks can report CPU per order, which other load on the machine
// disturbs less than wall-clock throughput.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
