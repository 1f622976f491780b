package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/sqlite/sqlitetest"
)

func benchDB(b *testing.B, opts sqlite.Options) *sqlite.DB {
	b.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkAccept measures the API's write path (order + idempotency key +
// message, durable) with many concurrent callers, as the HTTP server has.
func BenchmarkAccept(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) { benchAccept(b, sync, false) })
	}
	// As the api does: a take of the user's rate limit before each Accept
	// (see RateLimiter), against the same without it.
	for _, limited := range []bool{false, true} {
		b.Run(fmt.Sprint("synchronous=FULL/rate-limit=", limited), func(b *testing.B) { benchAccept(b, "FULL", limited) })
	}
}

func benchAccept(b *testing.B, sync string, limited bool) {
	db := benchDB(b, sqlite.Options{Synchronous: sync})
	lim := db.RateLimiter()
	rate := orderflow.Rate{Limit: 1 << 30, Window: time.Minute}
	var n atomic.Int64
	b.SetParallelism(64) // 64 × GOMAXPROCS concurrent requests
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := sqlitetest.CPUTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			user := fmt.Sprint("user-", i%1000)
			if limited {
				if d, err := lim.Take(context.Background(), "orders:"+user, rate, time.Now()); err != nil || !d.Allowed {
					b.Errorf("Take: %+v, %v", d, err)
					return
				}
			}
			o := order(user, time.Now())
			key := orderflow.IdempotencyKey{UserID: user, Key: fmt.Sprint("key-", i), RequestHash: "h"}
			if _, _, err := db.Accept(context.Background(), o, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64((sqlitetest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/order")
}

// BenchmarkProcessCycle measures what the processor does per order against
// the store and queue: receive (batches of 10) with PENDING → PROCESSING,
// reserve stock, record the charge, PROCESSING → COMPLETED, delete. 16
// pollers each handle their batch with one goroutine per message, like the
// processor's bounded concurrency. One op is one order.
func BenchmarkProcessCycle(b *testing.B) {
	db := benchDB(b, sqlite.Options{})
	ctx := context.Background()
	if err := db.SetStock(ctx, "widget", 1<<40); err != nil {
		b.Fatal(err)
	}
	// Fill the queue outside the timer, concurrently so that it batches.
	sem := make(chan struct{}, 256)
	var fillErr atomic.Value
	for i := range b.N {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			// 200 users, as in cmd/bench: their orders spread over the
			// pages of the per-user index.
			if _, _, err := db.Accept(ctx, order(fmt.Sprint("bench", i%200), time.Now()), orderflow.IdempotencyKey{}); err != nil {
				fillErr.Store(err)
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	if err := fillErr.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := sqlitetest.CPUTime()
	sqlitetest.Process(b, db, int64(b.N))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64((sqlitetest.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/order")
}

// BenchmarkOpenLargeFile measures what Open's check of the file costs on a
// large file (see docs/operations.md): Open and Close, whose check runs
// PRAGMA quick_check on the schema's pages, that quick_check alone, and
// for comparison a quick_check of the whole file. ORDERFLOW_BENCH_LARGE_DB
// names the file; if it does not exist it is made, with about 1 GiB of
// orders (minutes):
//
//	ORDERFLOW_BENCH_LARGE_DB=/var/tmp/orderflow-1g.db go test -run '^$' -bench OpenLargeFile -benchtime 3x ./sqlite/
func BenchmarkOpenLargeFile(b *testing.B) {
	path := os.Getenv("ORDERFLOW_BENCH_LARGE_DB")
	if path == "" {
		b.Skip("set ORDERFLOW_BENCH_LARGE_DB to the path of a large database file (made if missing)")
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		makeLargeFile(b, path, 1<<30)
	}
	if fi, err := os.Stat(path); err == nil {
		b.Logf("%s: %d MiB", path, fi.Size()>>20)
	}
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA quick_check(sqlite_schema)", "PRAGMA quick_check"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				var res string
				if err := raw.QueryRow(q).Scan(&res); err != nil || res != "ok" {
					b.Fatalf("%s: %q, %v", q, res, err)
				}
			}
		})
	}
}

// makeLargeFile makes a database file at path with at least size bytes
// of orders, spread over 1,000 users.
func makeLargeFile(b *testing.B, path string, size int64) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", path+"?_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	for {
		if _, err := raw.Exec(`INSERT INTO orders (id, user_id, amount, currency, items, status, request_id, created_at, updated_at)
			WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000)
			SELECT hex(randomblob(16)), 'user-' || (abs(random()) % 1000), 1999, 'USD', '[{"sku":"widget","quantity":1}]',
				'COMPLETED', hex(randomblob(16)), abs(random()) % 1000000000000, 0 FROM n`); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() >= size {
			return
		}
	}
}
