package sqlite_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// histogram returns the histogram of family name whose labels include
// labels, or nil.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetHistogram()
		}
	}
	return nil
}

// TestWriterMetricsCountWaitsFsyncsAndTransactions: every write is counted
// once under what released its caller (the fsync for an Accept, the
// commit for a status transition), every fsync of the WAL is timed, and
// the transactions account for every write, including those that shared
// one while an fsync was held.
func TestWriterMetricsCountWaitsFsyncsAndTransactions(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db, _ := open(t, sqlite.Options{Registerer: reg, JanitorInterval: time.Hour})
	entered, release := holdSyncs(db)
	defer release() // before db.Close, even when the test fails

	orders := make([]orderflow.Order, 4)
	for i := range orders {
		orders[i] = order("mia", t0.Add(time.Duration(i)*time.Millisecond))
	}
	errc := make(chan error, len(orders))
	acceptAsync := func(o orderflow.Order) {
		go func() {
			_, _, err := db.Accept(context.Background(), o, orderflow.IdempotencyKey{})
			errc <- err
		}()
	}
	var ran atomic.Int64
	db.SetAfterOp(func() { ran.Add(1) })
	acceptAsync(orders[0])
	<-entered // the first Accept is committed; its fsync is held
	heldAt := time.Now()
	for _, o := range orders[1:] {
		acceptAsync(o)
	}
	// The others join the open transaction.
	for deadline := time.Now().Add(30 * time.Second); ran.Load() < int64(len(orders)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer ran %d of the %d Accepts within 30s", ran.Load(), len(orders))
		}
	}
	held := time.Since(heldAt)
	release()
	for range orders {
		if err := <-errc; err != nil {
			t.Fatalf("Accept: %v", err)
		}
	}
	mustTransition(t, db, orderflow.Transition{ID: orders[0].ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: t0.Add(time.Second)})

	fsynced := histogram(t, reg, "sqlite_write_wait_seconds", map[string]string{"until": "fsync"})
	committed := histogram(t, reg, "sqlite_write_wait_seconds", map[string]string{"until": "commit"})
	if fsynced.GetSampleCount() != 4 || fsynced.GetSampleSum() < held.Seconds() {
		t.Errorf("writes released after the fsync: %d (%gs in all), want the 4 Accepts, waiting at least the %s the fsync was held", fsynced.GetSampleCount(), fsynced.GetSampleSum(), held)
	}
	if committed.GetSampleCount() != 1 {
		t.Errorf("writes released at commit: %d, want the 1 transition", committed.GetSampleCount())
	}
	if n := histogram(t, reg, "sqlite_wal_fsync_seconds", nil).GetSampleCount(); n < 2 {
		t.Errorf("fsyncs of the WAL: %d, want at least 2", n)
	}
	// The first Accept alone, the other three in one to three, the
	// transition in one of its own or with the last of them.
	tx := histogram(t, reg, "sqlite_transaction_writes", nil)
	if tx.GetSampleSum() != 5 || tx.GetSampleCount() < 2 || tx.GetSampleCount() > 4 {
		t.Errorf("transactions: %d holding %g writes, want 2-4 holding 5", tx.GetSampleCount(), tx.GetSampleSum())
	}
}

func TestWriterMetricsAreRegisteredOncePerRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	open(t, sqlite.Options{Registerer: reg})
	db, err := sqlite.Open(ctx(t), filepath.Join(t.TempDir(), "second.db"), sqlite.Options{Registerer: reg})
	if err == nil {
		db.Close()
		t.Fatal("a second DB registered its metrics on the same registry")
	}
}
