package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// Watching is a store that writes orders and a watcher that tells of
// their changes: the same process's (a Notify after commit) or another
// process's (a second handle on the same backing store).
type Watching struct {
	Store   Store
	Watcher orderflow.Watcher
}

// NewWatchingFunc returns a Watching for one subtest, cleaned up with t.
type NewWatchingFunc func(t *testing.T) Watching

// signalWait bounds how long the suite waits for a signal: generous
// against a slow machine, not a timing assertion.
const signalWait = 20 * time.Second

// TestWatcher runs the orderflow.Watcher contract.
func TestWatcher(t *testing.T, newWatching NewWatchingFunc) {
	t.Helper()
	t.Run("a transition of a watched order is told", func(t *testing.T) {
		w := newWatching(t)
		ctx := testCtx(t)
		o := create(t, w.Store, newOrder(unique("watcher"), time.Now(), 100))
		ch := w.Watcher.Watch(ctx, o.ID)
		drain(ch)
		steps := []orderflow.Status{orderflow.StatusProcessing, orderflow.StatusCompleted}
		from := orderflow.StatusPending
		for _, to := range steps {
			if _, err := w.Store.Transition(ctx, orderflow.Transition{ID: o.ID, From: from, To: to}); err != nil {
				t.Fatal(err)
			}
			waitSignal(t, ch, "after "+string(from)+" → "+string(to))
			drain(ch)
			from = to
		}
	})
	testWatcherCancel(t, newWatching)
	t.Run("each of many watched orders is told of its change", func(t *testing.T) {
		w := newWatching(t)
		ctx := testCtx(t)
		chans := map[orderflow.OrderID]<-chan struct{}{}
		for range 150 { // more than one batched read of DynamoDB
			o := create(t, w.Store, newOrder(unique("watcher"), time.Now(), 100))
			chans[o.ID] = w.Watcher.Watch(ctx, o.ID)
		}
		for id, ch := range chans {
			drain(ch)
			if _, err := w.Store.Transition(ctx, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing}); err != nil {
				t.Fatal(err)
			}
		}
		for id, ch := range chans {
			waitSignal(t, ch, "order "+string(id))
		}
	})
	t.Run("the channel closes when the watch's context ends", func(t *testing.T) {
		w := newWatching(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		o := create(t, w.Store, newOrder(unique("watcher"), time.Now(), 100))
		ch := w.Watcher.Watch(ctx, o.ID)
		cancel()
		deadline := time.After(signalWait)
		for {
			select {
			case _, open := <-ch:
				if !open {
					return
				}
			case <-deadline:
				t.Fatal("the channel is still open after the context ended")
			}
		}
	})
	t.Run("an unknown order can be watched", func(t *testing.T) {
		w := newWatching(t)
		ctx, cancel := context.WithCancel(testCtx(t))
		ch := w.Watcher.Watch(ctx, orderflow.NewOrderID(time.Now()))
		cancel()
		for range ch {
		}
	})
}

// waitSignal waits for a value on ch.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the channel closed instead of a signal", what)
		}
	case <-time.After(signalWait):
		t.Fatalf("%s: no signal within %s", what, signalWait)
	}
}

// drain takes a pending (possibly spurious) signal off ch.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// testWatcherCancel: a cancel request is a change of the order's status
// document, told as a transition is.
func testWatcherCancel(t *testing.T, newWatching NewWatchingFunc) {
	t.Run("a cancel request of a watched order is told", func(t *testing.T) {
		// PENDING: CANCELLED at once; PROCESSING: the request, a new
		// document for the processor to act on.
		w := newWatching(t)
		ctx := testCtx(t)
		pending := create(t, w.Store, newOrder(unique("watcher"), time.Now(), 100))
		working := create(t, w.Store, newOrder(unique("watcher"), time.Now(), 100))
		if _, err := w.Store.Transition(ctx, orderflow.Transition{ID: working.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing}); err != nil {
			t.Fatal(err)
		}
		for _, o := range []orderflow.Order{pending, working} {
			ch := w.Watcher.Watch(ctx, o.ID)
			drain(ch)
			if _, err := w.Store.RequestCancel(ctx, o.ID, o.UserID, time.Now()); err != nil {
				t.Fatal(err)
			}
			waitSignal(t, ch, "after a cancel request")
		}
	})
}
