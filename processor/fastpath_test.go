package processor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/logtest"
)

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

// The one read is the cancel point before the payment (a cancel requested
// while the order is in work spares the customer a charge and a refund).
func TestStoreWithStartOrderIsStartedWithoutARead(t *testing.T) {
	t.Run("a pending order is started, logged and completed", func(t *testing.T) {
		h := newHarness(t)
		s := h.s
		h.start()
		o := h.order(1000, items("widget", 1)...)
		h.waitDeleted(h.send(o))
		if s.starts.Load() != 1 || s.reads.Load() != 1 {
			t.Errorf("StartOrder calls = %d, GetOrder calls = %d; want 1 and 1 (the cancel point before the payment)", s.starts.Load(), s.reads.Load())
		}
		checkStartedAndCompleted(t, h, o)
	})
	t.Run("a redelivery of a finished order is deleted without effects", func(t *testing.T) {
		h := newHarness(t)
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
		h := newHarness(t)
		s := h.s
		s.getErrs = 2
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
		h := newHarness(t)
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
	waitFor(t, "the loop to take the freed slot", func() bool { return len(r.slots) == cap(r.slots) })
	cancel()
	wg.Wait()
	if partial != 1 {
		t.Errorf("acquired %d slots when the run ended, want the 1 it had", partial)
	}
}

// An order already PROCESSING (a crashed attempt) is continued without a
// second start, on the fake store as on the SQLite work queue.
func TestOrderAlreadyProcessingIsContinued(t *testing.T) {
	t.Run("fake store", func(t *testing.T) {
		h := newHarness(t)
		o := h.order(1000)
		o.Status = orderflow.StatusProcessing
		h.s.put(o)
		h.start()
		h.waitDeleted(h.send(o))
		if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
			t.Errorf("status = %s, want COMPLETED", got)
		}
		checkOnlyCompletionLogged(t, h.logs)
	})
	t.Run("SQLite work queue", func(t *testing.T) {
		r := newRig(t)
		o := r.accept(1000)
		if _, err := r.db.StartOrder(context.Background(), o.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		r.start()
		r.waitQueue(orderflow.QueueDepth{})
		if got := r.order(o.ID).Status; got != orderflow.StatusCompleted {
			t.Errorf("status = %s, want COMPLETED", got)
		}
		checkOnlyCompletionLogged(t, r.logs)
	})
}

func checkOnlyCompletionLogged(t *testing.T, logs *logtest.Buffer) {
	t.Helper()
	lines := logs.Messages("order transition")
	if len(lines) != 1 || lines[0]["from"] != "PROCESSING" || lines[0]["to"] != "COMPLETED" {
		t.Errorf("transition lines = %v, want only PROCESSING→COMPLETED", lines)
	}
}
