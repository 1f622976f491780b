package processor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// startingStore is a fakeStore with the OrderStarter fast path. It fails
// the next startErrs calls, and counts the calls of each kind.
type startingStore struct {
	*fakeStore
	startErrs atomic.Int32
	starts    atomic.Int32
	reads     atomic.Int32
}

func (s *startingStore) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	s.starts.Add(1)
	if s.startErrs.Add(-1) >= 0 {
		return orderflow.Order{}, orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	}
	return s.Transition(ctx, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at})
}

func (s *startingStore) GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	s.reads.Add(1)
	return s.fakeStore.GetOrder(ctx, id)
}

func withStarter(s **startingStore) func(*harness) {
	return func(h *harness) {
		*s = &startingStore{fakeStore: h.s}
		h.deps.Store = *s
	}
}

// checkStartedAndCompleted checks that o (one widget) was started and
// completed: its status, one log line per transition with its ids, one
// charge, the stock taken.
func checkStartedAndCompleted(t *testing.T, h *harness, o orderflow.Order) {
	t.Helper()
	if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("status = %s, want COMPLETED", got)
	}
	checkTransitionLogs(t, h, o)
	if h.ledger.count() != 1 || h.s.stockOf("widget") != 99 {
		t.Errorf("charges = %d, stock = %d; want 1 and 99", h.ledger.count(), h.s.stockOf("widget"))
	}
}

func TestStoreWithStartOrderIsStartedWithoutARead(t *testing.T) {
	t.Run("a pending order is started, logged and completed", func(t *testing.T) {
		var s *startingStore
		h := newHarness(t, withStarter(&s))
		h.start()
		o := h.order(1000, items("widget", 1)...)
		h.waitDeleted(h.send(o))
		if s.starts.Load() != 1 || s.reads.Load() != 0 {
			t.Errorf("StartOrder calls = %d, GetOrder calls = %d; want 1 and 0", s.starts.Load(), s.reads.Load())
		}
		checkStartedAndCompleted(t, h, o)
	})
	t.Run("a redelivery of a finished order is deleted without effects", func(t *testing.T) {
		var s *startingStore
		h := newHarness(t, withStarter(&s))
		o := h.order(1000)
		o.Status = orderflow.StatusCompleted
		h.s.put(o)
		h.start()
		h.waitDeleted(h.send(o))
		if h.ledger.count() != 0 || len(h.logs.Messages("order transition")) != 0 {
			t.Errorf("charges = %d, transitions logged = %d; want none", h.ledger.count(), len(h.logs.Messages("order transition")))
		}
		if len(h.logs.Messages("order already final; deleting the redelivered message")) != 1 {
			t.Error("want the redelivery logged")
		}
	})
	t.Run("a store outage is retried", func(t *testing.T) {
		var s *startingStore
		h := newHarness(t, withStarter(&s))
		s.startErrs.Store(2)
		h.start()
		o := h.order(1000)
		h.waitDeleted(h.send(o))
		if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
			t.Errorf("status = %s, want COMPLETED", got)
		}
		if n := len(h.logs.Messages("transient error; will retry")); n != 2 {
			t.Errorf("retries logged = %d, want 2", n)
		}
	})
	t.Run("an order that never exists goes to the DLQ untouched", func(t *testing.T) {
		var s *startingStore
		h := newHarness(t, withStarter(&s))
		h.start()
		h.waitDead(h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())})))
		if n := len(h.logs.Messages("order not found (yet); will retry")); n != testMaxReceives {
			t.Errorf("not-found attempts logged = %d, want %d", n, testMaxReceives)
		}
	})
}

func TestSaturatedReceiveLoopGathersAFullBatch(t *testing.T) {
	p := &Processor{cfg: Config{GatherDelay: time.Hour}}
	r := &run{p: p, slots: make(chan struct{}, 10)}
	for range 9 {
		r.slots <- struct{}{} // nine orders in work, one slot free
	}
	got := make(chan int, 1)
	go func() { got <- r.acquire(context.Background(), 5) }()
	for range 4 {
		<-r.slots // four orders finish
	}
	if n := <-got; n != 5 {
		t.Errorf("acquired %d slots, want a full batch of 5", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var partial int
	wg.Go(func() { partial = r.acquire(ctx, 5) })
	<-r.slots // one order finishes: the loop takes its slot and waits for more
	for len(r.slots) < cap(r.slots) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if partial != 1 {
		t.Errorf("acquired %d slots when the run ended, want the 1 it had", partial)
	}
}

// queueStore is one value that is both the queue and the store, with the
// ReceiveStarter fast path, like the embedded SQLite database. It counts
// the store calls the processor makes itself.
type queueStore struct {
	*fakeQueue
	*startingStore
	receiveStarts atomic.Int32 // ReceiveAndStart calls
}

func (qs *queueStore) Ping(context.Context) error { return nil }

func (qs *queueStore) ReceiveAndStart(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	qs.receiveStarts.Add(1)
	ds, err := qs.fakeQueue.Receive(ctx, max, wait)
	for i, d := range ds {
		if d.Err != nil {
			continue
		}
		o, err := qs.fakeStore.Transition(ctx, orderflow.Transition{ID: d.OrderID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: time.Now()})
		switch orderflow.ErrorCode(err) {
		case "":
			ds[i].Order, ds[i].Started = &o, true
		case orderflow.EConflict:
			ds[i].Order = &o
		}
	}
	return ds, err
}

func withQueueStore(qs **queueStore) func(*harness) {
	return func(h *harness) {
		*qs = &queueStore{fakeQueue: h.q, startingStore: &startingStore{fakeStore: h.s}}
		h.deps.Queue, h.deps.Store = *qs, *qs
	}
}

func TestQueueThatIsTheStoreStartsOrdersAsItDelivers(t *testing.T) {
	t.Run("a pending order is started by the receive, logged and completed", func(t *testing.T) {
		var qs *queueStore
		h := newHarness(t, withQueueStore(&qs))
		h.start()
		o := h.order(1000, items("widget", 1)...)
		h.waitDeleted(h.send(o))
		if qs.receiveStarts.Load() == 0 || qs.starts.Load() != 0 || qs.reads.Load() != 0 {
			t.Errorf("ReceiveAndStart calls = %d, StartOrder calls = %d, GetOrder calls = %d; want some, 0 and 0",
				qs.receiveStarts.Load(), qs.starts.Load(), qs.reads.Load())
		}
		checkStartedAndCompleted(t, h, o)
	})
	t.Run("a message whose order is missing takes the usual path", func(t *testing.T) {
		var qs *queueStore
		h := newHarness(t, withQueueStore(&qs))
		h.start()
		h.waitDead(h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())})))
		if qs.starts.Load() != testMaxReceives {
			t.Errorf("StartOrder calls = %d, want one per receive (%d)", qs.starts.Load(), testMaxReceives)
		}
	})
	t.Run("a queue apart from the store is not asked to start orders", func(t *testing.T) {
		var qs *queueStore
		h := newHarness(t, withQueueStore(&qs), func(h *harness) { h.deps.Store = h.s })
		h.start()
		o := h.order(1000)
		h.waitDeleted(h.send(o))
		if qs.receiveStarts.Load() != 0 {
			t.Errorf("ReceiveAndStart calls = %d, want 0", qs.receiveStarts.Load())
		}
		if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
			t.Errorf("status = %s, want COMPLETED", got)
		}
	})
}

// valueQueueStore is a queue and store of a type that cannot be compared
// (it holds a slice), to show that choosing the fast path never panics.
type valueQueueStore struct {
	*queueStore
	_ []int
}

func TestReceiveStarterIsChosenOnlyForTheSameValue(t *testing.T) {
	h := newHarness(t)
	qs := &queueStore{fakeQueue: h.q, startingStore: &startingStore{fakeStore: h.s}}
	other := &queueStore{fakeQueue: h.q, startingStore: &startingStore{fakeStore: h.s}}
	v := valueQueueStore{queueStore: qs}
	for _, tt := range []struct {
		name string
		q    Queue
		s    Store
		fast bool
	}{
		{"the same pointer", qs, qs, true},
		{"another value of the same type", qs, other, false},
		{"a queue that cannot start orders", h.q, h.s, false},
		{"an uncomparable type", v, v, false},
	} {
		if got := receiveStarter(tt.q, tt.s) != nil; got != tt.fast {
			t.Errorf("%s: fast path %v, want %v", tt.name, got, tt.fast)
		}
	}
}

// An order already PROCESSING (a crashed attempt) is continued without a
// second start, whichever fast path starts orders.
func TestOrderAlreadyProcessingIsContinued(t *testing.T) {
	for _, fp := range []struct {
		name      string
		configure func(*harness)
	}{
		{"StartOrder", func(h *harness) { var s *startingStore; withStarter(&s)(h) }},
		{"ReceiveAndStart", func(h *harness) { var qs *queueStore; withQueueStore(&qs)(h) }},
	} {
		t.Run(fp.name, func(t *testing.T) {
			h := newHarness(t, fp.configure)
			o := h.order(1000)
			o.Status = orderflow.StatusProcessing
			h.s.put(o)
			h.start()
			h.waitDeleted(h.send(o))
			if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
				t.Errorf("status = %s, want COMPLETED", got)
			}
			lines := h.logs.Messages("order transition")
			if len(lines) != 1 || lines[0]["from"] != "PROCESSING" || lines[0]["to"] != "COMPLETED" {
				t.Errorf("transition lines = %v, want only PROCESSING→COMPLETED", lines)
			}
		})
	}
}
