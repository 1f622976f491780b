package sqlite_test

import (
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

func TestStartOrderMovesOnlyPendingOrders(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	o := order("sam", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	at := t0.Add(time.Second)

	got, err := db.StartOrder(ctx(t), o.ID, at)
	if err != nil || got.Status != orderflow.StatusProcessing || !got.UpdatedAt.Equal(at) || got.UserID != "sam" {
		t.Fatalf("first StartOrder: got %+v, %v; want the order PROCESSING at %v", got, err, at)
	}
	got, err = db.StartOrder(ctx(t), o.ID, at.Add(time.Second))
	if orderflow.ErrorCode(err) != orderflow.EConflict || got.Status != orderflow.StatusProcessing || !got.UpdatedAt.Equal(at) {
		t.Errorf("second StartOrder: got %+v, %v; want the unchanged order with a conflict", got, err)
	}
	if _, err := db.StartOrder(ctx(t), orderflow.NewOrderID(t0), at); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("StartOrder of a missing order: got %v, want %s", err, orderflow.ENotFound)
	}
}

// Concurrent starts of the same orders share the writer's transactions;
// each order is started exactly once and the losers see a conflict (which
// writes nothing, so it needs no rollback of the others).
func TestConcurrentStartsStartEachOrderOnce(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	const n = 50
	ids := make([]orderflow.OrderID, n)
	for i := range ids {
		o := order("race", t0)
		accept(t, db, o, orderflow.IdempotencyKey{})
		ids[i] = o.ID
	}
	var wg sync.WaitGroup
	wins := make([]int, n)
	var mu sync.Mutex
	for range 4 {
		for i, id := range ids {
			wg.Go(func() {
				_, err := db.StartOrder(ctx(t), id, t0)
				switch orderflow.ErrorCode(err) {
				case "":
					mu.Lock()
					wins[i]++
					mu.Unlock()
				case orderflow.EConflict:
				default:
					t.Errorf("StartOrder: %v", err)
				}
			})
		}
	}
	wg.Wait()
	for i, w := range wins {
		if w != 1 {
			t.Errorf("order %d started %d times, want once", i, w)
		}
	}
}
