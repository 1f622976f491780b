package replica_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/sqlite/sqlitetest"
)

// pipeline accepts n orders from 64 callers of 200 users while 16 pollers
// take them to COMPLETED as the processor does, and returns when all are.
func pipeline(b *testing.B, db *sqlite.DB, n int) {
	ctx := context.Background()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := accepted.Add(1)
				if i > int64(n) {
					return
				}
				if _, _, err := db.Accept(ctx, order(fmt.Sprint("u", i%200), time.Now()), orderflow.IdempotencyKey{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	sqlitetest.Process(b, db, int64(n))
	wg.Wait()
}

// BenchmarkReplicationCost measures what continuous replication costs the
// pipeline in CPU per order, without HTTP or a load generator beside it:
// 60,000 orders accepted and completed (pipeline) with the replica to a
// directory off and on; with it on, the CPU includes Litestream's syncs,
// checkpoints and compactions and the last sync at the end.
//
//	go test ./replica -run '^$' -bench ReplicationCost -benchtime 1x -count 4
func BenchmarkReplicationCost(b *testing.B) {
	const n = 60000
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprint("replica=", on), func(b *testing.B) {
			for range b.N {
				dir := b.TempDir()
				path := filepath.Join(dir, "orderflow.db")
				db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := db.SetStock(context.Background(), "widget", 1<<40); err != nil {
					b.Fatal(err)
				}
				var r *replica.Replicator
				ctx, cancel := context.WithCancel(context.Background())
				runDone := make(chan error, 1)
				if on {
					r, err = replica.New(path, replica.Config{URL: "file://" + filepath.Join(dir, "replica")}, nil)
					if err != nil {
						b.Fatal(err)
					}
					go func() { runDone <- r.Run(ctx) }()
					for !r.Active() {
						time.Sleep(time.Millisecond)
					}
				} else {
					runDone <- nil
				}
				cpu0, start := sqlitetest.CPUTime(), time.Now()
				pipeline(b, db, n)
				wall := time.Since(start)
				cancel()
				if err := <-runDone; err != nil {
					b.Fatal(err)
				}
				cpu := sqlitetest.CPUTime() - cpu0
				db.Close()
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/order")
				b.ReportMetric(n/wall.Seconds(), "orders/s")
			}
		})
	}
}
