package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// A take is released as soon as it ran; when its transaction is then
// rolled back because a later operation of the batch failed after writing,
// the writer runs the batch again without the take (its caller has its
// answer already): the others get their own outcomes, and the take's
// unit is forgotten, never spent twice.
func TestTakeInABatchRolledBackIsNotRunAgain(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "orderflow.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	rate := orderflow.Rate{Limit: 3, Window: time.Minute}
	now := time.Now()

	// Hold the writer in a first operation until the two others are queued
	// behind it, so that all three share a transaction.
	// (It runs again, as the batch does after the failure.)
	hold, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		_ = db.write(ctx, func(*wtx) error { once.Do(func() { close(held) }); <-hold; return nil })
	}()
	<-held
	type outcome struct {
		d   orderflow.RateDecision
		err error
	}
	took, failed := make(chan outcome, 1), make(chan error, 1)
	go func() {
		d, err := db.RateLimiter().Take(ctx, "orders:u1", rate, now)
		took <- outcome{d, err}
	}()
	waitQueued(t, db, 1)
	boom := errors.New("boom after writing")
	go func() {
		failed <- db.write(ctx, func(w *wtx) error {
			if _, err := w.exec(w.setTAT, "other", 1); err != nil {
				return err
			}
			return boom
		})
	}()
	waitQueued(t, db, 2)
	close(hold)

	if got := <-took; got.err != nil || !got.d.Allowed || got.d.Remaining != 2 {
		t.Errorf("the take: %+v, %v; want allowed with 2 remaining", got.d, got.err)
	}
	if err := <-failed; !errors.Is(err, boom) {
		t.Errorf("the failing operation: %v, want its own error", err)
	}
	// The rollback took the take's unit with it.
	if d, err := db.RateLimiter().Take(ctx, "orders:u1", rate, now); err != nil || d.Remaining != 2 {
		t.Errorf("the next take: %+v, %v; want 2 remaining (the rolled-back unit forgotten, not spent twice)", d, err)
	}
}

// waitQueued waits until n operations wait for the writer.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(db.ops) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued for the writer, want %d", len(db.ops), n)
		}
	}
}
