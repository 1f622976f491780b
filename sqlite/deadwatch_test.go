package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// never is a watch interval that no test waits out: what such a watch
// hands out, it found at its start or was woken for.
const never = time.Hour

// deadLetterAll receives every visible message maxReceives times (making
// it visible again each time), so that the next receive dead-letters them
// all, and does that receive.
func deadLetterAll(t *testing.T, db *sqlite.DB, maxReceives int) {
	t.Helper()
	for range maxReceives {
		for _, d := range receive(t, db, 100) {
			if err := db.ChangeVisibility(ctx(t), d.Receipt, 0); err != nil {
				t.Fatalf("ChangeVisibility: %v", err)
			}
		}
	}
	if ds := receive(t, db, 100); len(ds) != 0 {
		t.Fatalf("last receive returned %d messages, want none (all dead-lettered)", len(ds))
	}
}

// watch runs db.WatchDead with handle until the test ends or stop is
// called; stop returns what WatchDead returned.
func watch(t *testing.T, db *sqlite.DB, interval time.Duration, handle func(context.Context, orderflow.Delivery) error) (stop func() error) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- db.WatchDead(c, interval, handle) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("WatchDead did not return within 30s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// handedOut is a WatchDead handle that passes each delivery on.
func handedOut() (chan orderflow.Delivery, func(context.Context, orderflow.Delivery) error) {
	ch := make(chan orderflow.Delivery, 100)
	return ch, func(_ context.Context, d orderflow.Delivery) error { ch <- d; return nil }
}

// next waits for the next delivery on ch.
func next(t *testing.T, ch <-chan orderflow.Delivery, what string) orderflow.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return orderflow.Delivery{}
	}
}

// TestDeadLetteringLeavesTheOrderToTheWatch: a receive that finds a
// message received MaxReceives times moves it to the dead-letter table in
// its transaction and hands it out to no one (nor to ReceiveAndStart), and
// leaves its order, its stock and its charge as they are: ending the order
// is the processor's dead-letter watch's. Redrive puts the messages back
// with a fresh receive count.
func TestDeadLetteringLeavesTheOrderToTheWatch(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{MaxReceives: 2})
	pending := order("erin", t0)
	processing := order("erin", t0.Add(time.Millisecond))
	completed := order("erin", t0.Add(2*time.Millisecond))
	charged := order("erin", t0.Add(3*time.Millisecond))
	for _, o := range []orderflow.Order{pending, processing, completed, charged} {
		accept(t, db, o, orderflow.IdempotencyKey{})
	}
	if err := db.SetStock(ctx(t), "bolt", 10); err != nil {
		t.Fatal(err)
	}
	for _, id := range []orderflow.OrderID{processing.ID, charged.ID} {
		mustTransition(t, db, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: t0})
		if f, err := db.Reserve(ctx(t), id, []orderflow.Item{{SKU: "bolt", Quantity: 3}}); f != nil || err != nil {
			t.Fatalf("Reserve: %v %v", f, err)
		}
	}
	if _, _, err := db.RecordCharge(ctx(t), orderflow.Charge{ID: "ch_1", IdempotencyKey: string(charged.ID), OrderID: charged.ID, Amount: 1, Currency: "USD", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.SendRaw(ctx(t), []byte("poison")); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	mustTransition(t, db, orderflow.Transition{ID: completed.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: t0})
	mustTransition(t, db, orderflow.Transition{ID: completed.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: t0})
	before := map[orderflow.OrderID]orderflow.Order{}
	for _, o := range []orderflow.Order{pending, processing, completed, charged} {
		before[o.ID], _ = db.GetOrder(ctx(t), o.ID)
	}

	for range 2 {
		ds := receive(t, db, 10)
		if len(ds) != 5 {
			t.Fatalf("received %d messages, want 5", len(ds))
		}
		for _, d := range ds {
			if err := db.ChangeVisibility(ctx(t), d.Receipt, 0); err != nil {
				t.Fatalf("ChangeVisibility: %v", err)
			}
		}
	}
	if ds, err := db.WorkQueue().Receive(ctx(t), 10, 0); err != nil || len(ds) != 0 {
		t.Fatalf("third receive (the work queue's) = %+v, %v; want nothing handed out (all dead-lettered)", ds, err)
	}
	if got, want := depth(t, db), (orderflow.QueueDepth{Dead: 5}); got != want {
		t.Errorf("depth = %+v, want %+v", got, want)
	}
	for id, was := range before {
		got, err := db.GetOrder(ctx(t), id)
		if err != nil || got.Status != was.Status || !got.UpdatedAt.Equal(was.UpdatedAt) || got.Failure != nil {
			t.Errorf("order %s after dead-lettering = %+v, %v; want it as it was (%s)", id, got, err, was.Status)
		}
	}
	if n, err := db.Stock(ctx(t), "bolt"); err != nil || n != 4 {
		t.Errorf("stock after dead-lettering = %d, %v; want 4 (still held by both orders)", n, err)
	}

	// Redrive puts all five back with a fresh receive count.
	if n, err := db.Redrive(ctx(t), 10); err != nil || n != 5 {
		t.Fatalf("Redrive = %d, %v; want 5", n, err)
	}
	for _, d := range receive(t, db, 10) {
		if d.ReceiveCount != 1 {
			t.Errorf("redriven message %s has ReceiveCount %d, want 1", d.MessageID, d.ReceiveCount)
		}
	}
}

// TestWatchDeadHandsOutEachDeadMessageOnce: the watch hands out each
// message of the dead-letter table once: those there when it starts, then
// one a receive dead-letters at once (the watch's interval is never). A
// message it handled is not handed out again, by this watch or the next,
// until it is redriven and dead-lettered again. The messages stay listed
// for the operator.
func TestWatchDeadHandsOutEachDeadMessageOnce(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{MaxReceives: 1})
	first, second := order("ida", t0), order("ida", t0.Add(time.Millisecond))
	accept(t, db, first, orderflow.IdempotencyKey{})
	if err := db.SendRaw(ctx(t), []byte("poison")); err != nil {
		t.Fatal(err)
	}
	deadLetterAll(t, db, 1)

	ch, handle := handedOut()
	stop := watch(t, db, never, handle)
	got := map[orderflow.OrderID]orderflow.Delivery{}
	for range 2 {
		d := next(t, ch, "the messages dead before the watch started")
		got[d.OrderID] = d
	}
	if d := got[first.ID]; d.Err != nil || d.ReceiveCount != 1 || d.RequestID != first.RequestID || d.MessageID == "" || d.Receipt != "" {
		t.Errorf("dead message of %s handed out as %+v; want its message, received once, without receipt", first.ID, d)
	}
	if d, ok := got[""]; !ok || d.Err == nil || string(d.Body) != "poison" {
		t.Errorf("poison message handed out as %+v, %v; want its body and a decode error", d, ok)
	}

	accept(t, db, second, orderflow.IdempotencyKey{})
	deadLetterAll(t, db, 1)
	if d := next(t, ch, "the message a receive dead-lettered"); d.OrderID != second.ID {
		t.Errorf("handed out %s, want the one just dead-lettered (%s)", d.OrderID, second.ID)
	}
	if err := stop(); err != nil {
		t.Errorf("WatchDead after its context ended: %v, want nil", err)
	}

	// A new watch starts with the unhandled messages: there are none, so
	// the first it hands out is the one dead-lettered after it started.
	ch, handle = handedOut()
	watch(t, db, never, handle)
	if n, err := db.Redrive(ctx(t), 1); err != nil || n != 1 { // the oldest: first's
		t.Fatalf("Redrive = %d, %v; want 1", n, err)
	}
	deadLetterAll(t, db, 1)
	if d := next(t, ch, "the redriven message dead-lettered again"); d.OrderID != first.ID {
		t.Errorf("a new watch handed out %q first, want the redriven message of %s (the others are handled)", d.OrderID, first.ID)
	}
	if ds, err := db.ListDead(ctx(t), 10); err != nil || len(ds) != 3 {
		t.Errorf("ListDead = %d messages, %v; want all 3 left for the operator", len(ds), err)
	}
}

// TestWatchDeadRetriesAFailedHandle: a message whose handle fails is
// handed out again at a later look, and marked handled only once its
// handle succeeds.
func TestWatchDeadRetriesAFailedHandle(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{MaxReceives: 1})
	o := order("jon", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	deadLetterAll(t, db, 1)
	var mu sync.Mutex
	calls := 0
	ok := make(chan struct{})
	stop := watch(t, db, 5*time.Millisecond, func(context.Context, orderflow.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls < 3 {
			return errors.New("store unreachable")
		}
		if calls == 3 {
			close(ok)
		}
		return nil
	})
	select {
	case <-ok:
	case <-time.After(30 * time.Second):
		t.Fatal("a failed handle was not retried")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ch, handle := handedOut()
	watch(t, db, never, handle)
	late := order("jon", t0.Add(time.Millisecond))
	accept(t, db, late, orderflow.IdempotencyKey{})
	deadLetterAll(t, db, 1)
	if d := next(t, ch, "the next dead message"); d.OrderID != late.ID {
		t.Errorf("handed out %s first, want %s (the retried one is handled)", d.OrderID, late.ID)
	}
}

// TestWatchDeadHandlesWhatARestartLeftUnhandled: messages dead-lettered
// with no watch running (the processor died between the receive that
// dead-lettered them and ending their orders) are handed out by the first
// watch after the restart.
func TestWatchDeadHandlesWhatARestartLeftUnhandled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orderflow.db")
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{MaxReceives: 1})
	if err != nil {
		t.Fatal(err)
	}
	o := order("kim", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	deadLetterAll(t, db, 1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = sqlite.Open(ctx(t), path, sqlite.Options{MaxReceives: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ch, handle := handedOut()
	watch(t, db, never, handle)
	if d := next(t, ch, "the message dead-lettered before the restart"); d.OrderID != o.ID {
		t.Errorf("handed out %s, want %s", d.OrderID, o.ID)
	}
}

// TestWatchDeadStopsWithTheDB: a watch returns EUnavailable when its DB
// closes, and refuses an interval that is not positive.
func TestWatchDeadStopsWithTheDB(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orderflow.db")
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context, orderflow.Delivery) error { return nil }
	if err := db.WatchDead(ctx(t), 0, noop); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("WatchDead with interval 0: %v, want %s", err, orderflow.EInvalid)
	}
	done := make(chan error, 1)
	go func() { done <- db.WatchDead(ctx(t), never, noop) }()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("WatchDead after Close: %v, want %s", err, orderflow.EUnavailable)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WatchDead did not return after Close")
	}
}

// TestOpenMarksTheDeadOfAnOlderSchemaHandled: the messages of a file
// written before the dead table had its handled column had their orders
// ended as they were dead-lettered, so the watch does not hand them out.
func TestOpenMarksTheDeadOfAnOlderSchemaHandled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	gone := order("lou", t0)
	for _, q := range append(sqlite.Migrations[:3:3], "PRAGMA user_version = 3") {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	body := orderflow.EncodeMessage(orderflow.Message{OrderID: gone.ID})
	// As an older receive dead-lettered it: out of the queue into dead.
	if _, err := old.Exec(`INSERT INTO queue (body, receive_count, visible_at, sent_at) VALUES (?, 5, 0, 0)`, body); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO dead (id, body, receive_count, visible_at, sent_at) SELECT id, body, receive_count, 0, sent_at FROM queue;
		DELETE FROM queue`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx(t), path, sqlite.Options{MaxReceives: 1})
	if err != nil {
		t.Fatalf("Open of a schema-3 file: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ch, handle := handedOut()
	watch(t, db, never, handle)
	o := order("lou", t0.Add(time.Millisecond))
	accept(t, db, o, orderflow.IdempotencyKey{})
	deadLetterAll(t, db, 1)
	if d := next(t, ch, "the message dead-lettered after the upgrade"); d.OrderID != o.ID {
		t.Errorf("handed out %s first, want %s (the old dead message was handled when it died)", d.OrderID, o.ID)
	}
	if got := depth(t, db); got.Dead != 2 {
		t.Errorf("depth = %+v, want both dead messages listed", got)
	}
}
