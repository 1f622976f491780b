//go:build linux

package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/storetest"
)

// openOnSmallDisk opens a DB on a new tmpfs of size bytes, logging to the
// returned buffer.
func openOnSmallDisk(t *testing.T, size int64) (*sqlite.DB, string, *logtest.Buffer) {
	t.Helper()
	dir := storetest.SmallDisk(t, size)
	logs := &logtest.Buffer{}
	path := filepath.Join(dir, "orderflow.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path, logs
}

// load accepts orders from 8 goroutines, as a busy api whose clients
// retry, until the test ends; ok counts the accepts that succeeded and
// failed those that failed since the last reset.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, db *sqlite.DB) *load {
	l := &load{stop: make(chan struct{})}
	var n atomic.Int64
	for range 8 {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				i := n.Add(1)
				o := order(fmt.Sprint("load-", i%50), time.Now())
				o.RequestID = strings.Repeat("r", 500) // pages fill faster
				if _, _, err := db.Accept(context.Background(), o, orderflow.IdempotencyKey{}); err != nil {
					l.failed.Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// waitFor polls cond every 10 ms until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A full disk makes Ping (readiness) fail, and once space is freed the DB
// recovers by itself while writes and reads keep coming: it refuses writes
// until a checkpoint has moved the WAL into the database file and
// truncated it, so that the freed space goes there first, and from then
// on keeps the WAL short, so that the WAL of writes that steady readers
// keep from being checkpointed does not take the space back.
func TestFullDiskFailsPingAndRecoversWithoutRestartOnceSpaceIsFreed(t *testing.T) {
	db, path, _ := openOnSmallDisk(t, 16<<20)
	kept, _ := accept(t, db, order("kept", t0), orderflow.IdempotencyKey{})
	if err := db.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping before the disk is full: %v", err)
	}
	filler := storetest.FillDisk(t, filepath.Dir(path))
	startReaders(t, db)
	l := startLoad(t, db)
	waitFor(t, "writes fail on the full disk", func() bool { return l.failed.Load() > 100 })
	waitFor(t, "Ping fails on the full disk", func() bool {
		return orderflow.ErrorCode(db.Ping(ctx(t))) == orderflow.EUnavailable
	})

	filler.Free(t, 6<<20)
	l.ok.Store(0)
	waitFor(t, "writes succeed again after space was freed", func() bool { return l.ok.Load() > 0 })
	l.end()
	// The freed space stays available to orders: 1,000 more (about 1 MB
	// of rows) fit, with the readers still going.
	for i := range 1000 {
		if _, _, err := db.Accept(ctx(t), order("after", time.Now()), orderflow.IdempotencyKey{}); err != nil {
			t.Fatalf("accept %d after space was freed: %v", i, err)
		}
	}
	waitFor(t, "Ping succeeds again", func() bool { return db.Ping(ctx(t)) == nil })
	if _, err := db.GetOrder(ctx(t), kept.ID); err != nil {
		t.Errorf("the order committed before the disk filled: %v", err)
	}
}

// startReaders reads from 4 goroutines without pause until the test ends,
// as status polls do: there is nearly always a reader on the WAL.
func startReaders(t *testing.T, db *sqlite.DB) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = db.ListOrders(context.Background(), "load-1", "", 20)
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// On a full disk every failed write is not a log line: the storage error
// is written once per interval with a count, and never the spurious
// "cannot rollback - no transaction is active" of a ROLLBACK after SQLite
// had rolled back already.
func TestFullDiskLogsTheStorageErrorOnceWithACount(t *testing.T) {
	db, path, logs := openOnSmallDisk(t, 8<<20)
	storetest.FillDisk(t, filepath.Dir(path))
	failed := 0
	for i := range 300 {
		o := order("full", t0.Add(time.Duration(i)*time.Millisecond))
		o.RequestID = strings.Repeat("r", 2000)
		if _, _, err := db.Accept(context.Background(), o, orderflow.IdempotencyKey{}); err != nil {
			failed++
		}
	}
	if failed < 250 {
		t.Fatalf("%d of 300 accepts failed on a full disk; want nearly all", failed)
	}
	db.Close() // writes the counts held back
	var storage int
	for _, l := range logs.Records(t) {
		msg, _ := l["msg"].(string)
		errText, _ := l["err"].(string)
		if strings.Contains(msg, "rollback") || strings.Contains(errText, "cannot rollback") {
			t.Errorf("spurious rollback line: %v", l)
		}
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			storage++
		}
	}
	if storage > 4 {
		t.Errorf("%d warning and error lines for %d failed writes, want a few:\n%s", storage, failed, logs.String())
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("no line says the disk is full:\n%s", logs.String())
	}
}

// While the disk is short of space Ping does not believe the last write's
// success: it writes a probe, which commits while the WAL still has room
// (then the store can indeed take a write) and fails once it has none.
// With room again, a healthy idle DB answers without writing.
func TestPingProbesWhileTheDiskIsShortOfSpace(t *testing.T) {
	dir := storetest.SmallDisk(t, 16<<20)
	reg := prometheus.NewRegistry()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "orderflow.db"), sqlite.Options{Registerer: reg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	accept(t, db, order("idle", t0), orderflow.IdempotencyKey{})
	pingWrites := func() uint64 {
		t.Helper()
		tx0, _ := writerCounts(t, reg)
		_ = db.Ping(ctx(t))
		tx, _ := writerCounts(t, reg)
		return tx - tx0
	}
	if n := pingWrites(); n != 0 {
		t.Fatalf("Ping with room on the disk wrote %d transactions, want none", n)
	}
	filler := storetest.FillDisk(t, dir)
	// Short of space, Ping does not answer from the last write, which
	// succeeded: it probes (one transaction, which the WAL's room may still
	// take), unless writes are refused already because the checkpointer met
	// the full disk first, and then it fails without one.
	tx0, _ := writerCounts(t, reg)
	err = db.Ping(ctx(t))
	tx, _ := writerCounts(t, reg)
	if n := tx - tx0; !(n == 1 || n == 0 && err != nil) {
		t.Errorf("Ping with the disk full wrote %d transactions and returned %v, want a probe, or an error for writes refused", n, err)
	}
	filler.Free(t, 6<<20)
	waitFor(t, "Ping succeeds", func() bool { return db.Ping(ctx(t)) == nil })
	if n := pingWrites(); n != 0 {
		t.Errorf("Ping with room again wrote %d transactions, want none", n)
	}
}
