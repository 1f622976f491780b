package sqlite_test

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// writerCounts is how many transactions the writer committed and how many
// fsyncs of the WAL it made, from its metrics.
func writerCounts(t *testing.T, reg *prometheus.Registry) (tx, fsyncs uint64) {
	t.Helper()
	return histogram(t, reg, "sqlite_transaction_writes", nil).GetSampleCount(),
		histogram(t, reg, "sqlite_wal_fsync_seconds", nil).GetSampleCount()
}

// TestIdleDBWritesNothing: receivers long-polling an empty queue, and a
// janitor with nothing to purge, cost no write transaction and no fsync;
// a receive writes once it hands out a message.
func TestIdleDBWritesNothing(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db, _ := open(t, sqlite.Options{Registerer: reg, JanitorInterval: 10 * time.Millisecond})

	// Some history first: an order with a key, received and deleted, then
	// one more accepted and taken, so that the file is not brand new.
	accept(t, db, order("ida", t0), orderflow.IdempotencyKey{UserID: "ida", Key: "k", RequestHash: "h"})
	if err := db.Delete(ctx(t), receive(t, db, 10)[0].Receipt); err != nil {
		t.Fatal(err)
	}
	accept(t, db, order("ida", t0.Add(time.Second)), orderflow.IdempotencyKey{})
	taken := receive(t, db, 10)[0] // in flight (hidden), not visible
	// SetStock returns once fsynced, and so is everything before it: no
	// fsync is still to come when the counting starts.
	if err := db.SetStock(ctx(t), "widget", 1); err != nil {
		t.Fatal(err)
	}

	tx0, fs0 := writerCounts(t, reg)
	const receivers, polls = 4, 5
	var wg sync.WaitGroup
	for range receivers {
		wg.Go(func() {
			for range polls {
				ds, err := db.Receive(ctx(t), 10, 300*time.Millisecond)
				if err != nil || len(ds) != 0 {
					t.Errorf("Receive on an idle queue = %d messages, %v; want none", len(ds), err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := db.PurgeExpiredKeys(ctx(t)); err != nil || n != 0 {
		t.Errorf("PurgeExpiredKeys = %d, %v; want 0", n, err)
	}
	// Readiness asked again and again (a probe every second, for minutes)
	// answers from the last write's success.
	for range 20 {
		if err := db.Ping(ctx(t)); err != nil {
			t.Fatalf("Ping of a healthy idle DB: %v", err)
		}
	}
	if tx, fs := writerCounts(t, reg); tx != tx0 || fs != fs0 {
		t.Errorf("idle, %d receivers polling %d times each and /ready asked 20 times: %d write transactions and %d fsyncs, want none",
			receivers, polls, tx-tx0, fs-fs0)
	}

	// A receive that hands out a message writes (and fsyncs).
	if err := db.ChangeVisibility(ctx(t), taken.Receipt, 0); err != nil {
		t.Fatal(err)
	}
	tx1, _ := writerCounts(t, reg)
	if ds := receive(t, db, 10); len(ds) != 1 {
		t.Fatalf("got %d messages, want the one made visible", len(ds))
	}
	if tx, _ := writerCounts(t, reg); tx <= tx1 {
		t.Errorf("a receive that handed out a message committed no transaction")
	}
}

// TestTransactionThatWroteNothingIsNotFsynced: a replayed Accept reads its
// earlier answer and writes nothing; once what it read is fsynced, it is
// released without another fsync.
func TestTransactionThatWroteNothingIsNotFsynced(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db, _ := open(t, sqlite.Options{Registerer: reg, JanitorInterval: time.Hour})
	key := orderflow.IdempotencyKey{UserID: "ivo", Key: "k", RequestHash: "h"}
	o := order("ivo", t0)
	first, _ := accept(t, db, o, key) // returns once fsynced

	tx0, fs0 := writerCounts(t, reg)
	if again, created := accept(t, db, o, key); created || again.ID != first.ID {
		t.Fatalf("replay created %v, order %s; want the first order %s", created, again.ID, first.ID)
	}
	tx, fs := writerCounts(t, reg)
	if tx != tx0+1 || fs != fs0 {
		t.Errorf("replayed Accept: %d transactions and %d fsyncs, want 1 and none", tx-tx0, fs-fs0)
	}
}
