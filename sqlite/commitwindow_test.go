package sqlite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// windowDB is a DB whose commit window never closes by itself: a
// transaction the window holds commits only when it fills
// (sqlite.WindowBatch) or while a backlog waits.
func windowDB(t *testing.T) (*sqlite.DB, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	db, _ := open(t, sqlite.Options{Registerer: reg, JanitorInterval: time.Hour, CommitWindow: time.Hour})
	return db, reg
}

// acceptAll sends n Accepts of user at once and returns their errors.
func acceptAll(ctx context.Context, db *sqlite.DB, user string, n int) <-chan error {
	errc := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := db.Accept(ctx, order(user, t0.Add(time.Duration(i+1)*time.Millisecond)), orderflow.IdempotencyKey{})
			errc <- err
		}()
	}
	return errc
}

// transactions is how many transactions the DB has committed, and their
// writes.
func transactions(t *testing.T, reg *prometheus.Registry) (txs uint64, writes float64) {
	h := histogram(t, reg, "sqlite_transaction_writes", nil)
	return h.GetSampleCount(), h.GetSampleSum()
}

// TestCommitWindowGathersWrites: a write that finds the writer quiet
// commits at once, however long the commit window; the writes that come
// within the window after a commit share one transaction, which commits
// once it holds sqlite.WindowBatch of them.
func TestCommitWindowGathersWrites(t *testing.T) {
	t.Parallel()
	db, reg := windowDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := db.Accept(ctx, order("mia", t0), orderflow.IdempotencyKey{}); err != nil {
		t.Fatalf("the first write, on a quiet database, did not commit: %v", err)
	}
	txs0, writes0 := transactions(t, reg)
	errc := acceptAll(ctx, db, "mia", sqlite.WindowBatch)
	for range sqlite.WindowBatch {
		if err := <-errc; err != nil {
			t.Fatalf("Accept within the window: %v", err)
		}
	}
	txs, writes := transactions(t, reg)
	if txs-txs0 != 1 || writes-writes0 != sqlite.WindowBatch {
		t.Errorf("the %d writes within the window took %d transactions (%g writes), want 1 of %d", sqlite.WindowBatch, txs-txs0, writes-writes0, sqlite.WindowBatch)
	}
}

// TestNoCommitWindowWhileABacklogWaits: a receive that gets every message
// it asked for (more may wait) turns the window off, and the writes after
// it commit at once; one that finds fewer turns it on again.
func TestNoCommitWindowWhileABacklogWaits(t *testing.T) {
	t.Parallel()
	db, reg := windowDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := db.Accept(ctx, order("ned", t0), orderflow.IdempotencyKey{}); err != nil {
		t.Fatalf("the first write, on a quiet database, did not commit: %v", err)
	}
	// Asked for one, it gets one: a backlog may wait, and its own
	// transaction commits without the window.
	if got, err := db.Receive(ctx, 1, 0); err != nil || len(got) != 1 {
		t.Fatalf("Receive(1): %d messages, %v; want 1", len(got), err)
	}
	txs0, _ := transactions(t, reg)
	if _, _, err := db.Accept(ctx, order("ned", t0.Add(time.Second)), orderflow.IdempotencyKey{}); err != nil {
		t.Fatalf("Accept while a backlog waits was held by the window: %v", err)
	}
	if txs, _ := transactions(t, reg); txs-txs0 != 1 {
		t.Errorf("the Accept while a backlog waits took %d transactions, want 1", txs-txs0)
	}

	// Asked for ten, it gets the one left: the window is on again, and the
	// receive and the writes after it share a transaction that commits
	// once it is full.
	txs0, writes0 := transactions(t, reg)
	ran := make(chan struct{})
	var once sync.Once
	db.SetAfterOp(func() { once.Do(func() { close(ran) }) })
	type received struct {
		n   int
		err error
	}
	recv := make(chan received, 1)
	go func() {
		got, err := db.Receive(ctx, 10, 0)
		recv <- received{len(got), err}
	}()
	select {
	case <-ran: // the receive ran in the open transaction
	case <-ctx.Done():
		t.Fatal("the receive never ran")
	}
	errc := acceptAll(ctx, db, "ned", sqlite.WindowBatch-1)
	for range sqlite.WindowBatch - 1 {
		if err := <-errc; err != nil {
			t.Fatalf("Accept within the window: %v", err)
		}
	}
	if r := <-recv; r.err != nil || r.n != 1 {
		t.Fatalf("Receive(10): %d messages, %v; want the 1 waiting", r.n, r.err)
	}
	if txs, writes := transactions(t, reg); txs-txs0 != 1 || writes-writes0 != sqlite.WindowBatch {
		t.Errorf("the short receive and the %d writes after it took %d transactions (%g writes), want 1 of %d", sqlite.WindowBatch-1, txs-txs0, writes-writes0, sqlite.WindowBatch)
	}
}
