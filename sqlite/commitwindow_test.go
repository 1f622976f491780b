package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// TestCommitWindowGathersWrites: a write that finds the writer quiet
// commits at once, however long the commit window; the writes that come
// within the window after a commit share one transaction. The window here
// never closes, so the writes after the first commit only when they fill
// a transaction (sqlite.MaxBatch), all in that one.
func TestCommitWindowGathersWrites(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db, _ := open(t, sqlite.Options{Registerer: reg, JanitorInterval: time.Hour, CommitWindow: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := db.Accept(ctx, order("mia", t0), orderflow.IdempotencyKey{}); err != nil {
		t.Fatalf("the first write, on a quiet database, did not commit: %v", err)
	}
	before := histogram(t, reg, "sqlite_transaction_writes", nil)
	errc := make(chan error, sqlite.MaxBatch)
	for i := range sqlite.MaxBatch {
		go func() {
			_, _, err := db.Accept(ctx, order("mia", t0.Add(time.Duration(i+1)*time.Millisecond)), orderflow.IdempotencyKey{})
			errc <- err
		}()
	}
	for range sqlite.MaxBatch {
		if err := <-errc; err != nil {
			t.Fatalf("Accept within the window: %v", err)
		}
	}
	after := histogram(t, reg, "sqlite_transaction_writes", nil)
	if txs, writes := after.GetSampleCount()-before.GetSampleCount(), after.GetSampleSum()-before.GetSampleSum(); txs != 1 || writes != sqlite.MaxBatch {
		t.Errorf("the %d writes within the window took %d transactions (%g writes), want 1 of %d", sqlite.MaxBatch, txs, writes, sqlite.MaxBatch)
	}
}
