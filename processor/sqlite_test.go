package processor

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/logtest"
	"github.com/orderflow/orderflow/sqlite"
)

// rig runs a Processor on a real embedded database (its work queue as the
// queue and store, its stock, its ledger behind the simulated gateway),
// for the rules that need no injected fault.
type rig struct {
	t    *testing.T
	db   *sqlite.DB
	p    *Processor
	logs *logtest.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "orderflow.db"), sqlite.Options{
		VisibilityTimeout: 5 * time.Second, MaxReceives: testMaxReceives,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for sku, n := range map[string]int{"widget": 100, "gizmo": 5} {
		if err := db.SetStock(ctx, sku, n); err != nil {
			t.Fatal(err)
		}
	}
	r := &rig{t: t, db: db, logs: &logtest.Buffer{}}
	r.p = r.newProcessor()
	return r
}

// newProcessor returns a processor on its own work queue of the database.
func (r *rig) newProcessor() *Processor {
	r.t.Helper()
	db := r.db
	wq := db.WorkQueue()
	p, err := New(Config{
		Env: "test", Concurrency: 8, WaitTime: 5 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond, DeleteDelay: time.Millisecond,
	}, Deps{
		Queue: wq, Store: wq, Inventory: db, Fraud: NewRules(RulesConfig{}, db),
		Payment: NewSimulatedGateway(GatewayConfig{Latency: time.Millisecond}, db, time.Now),
		Logger:  slog.New(orderflow.LogHandler(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// start runs the processor until the test ends.
func (r *rig) start() { r.run(r.p) }

// run runs p until the test ends.
func (r *rig) run(p *Processor) {
	t := r.t
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", r.logs.String())
		}
	})
}

// accept stores and queues a PENDING order of user u1.
func (r *rig) accept(amount int64, its ...orderflow.Item) orderflow.Order {
	r.t.Helper()
	now := time.Now()
	o := orderflow.Order{
		ID: orderflow.NewOrderID(now), UserID: "u1", Amount: amount, Currency: "USD", Items: its,
		Status: orderflow.StatusPending, RequestID: "req-1", CreatedAt: now, UpdatedAt: now,
	}
	if _, _, err := r.db.Accept(context.Background(), o, orderflow.IdempotencyKey{}); err != nil {
		r.t.Fatal(err)
	}
	return o
}

// waitQueue waits until the queue holds want (an empty queue once the
// processor deleted every message).
func (r *rig) waitQueue(want orderflow.QueueDepth) {
	r.t.Helper()
	waitFor(r.t, fmt.Sprintf("queue depth %+v", want), func() bool {
		d, err := r.db.Depth(context.Background())
		return err == nil && d == want
	})
}

func (r *rig) order(id orderflow.OrderID) orderflow.Order {
	r.t.Helper()
	o, err := r.db.GetOrder(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return o
}

func (r *rig) stock(sku string) int {
	r.t.Helper()
	n, err := r.db.Stock(context.Background(), sku)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) charges(id orderflow.OrderID) int {
	r.t.Helper()
	cs, err := r.db.Charges(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return len(cs)
}

func TestOnSQLiteAnOrderIsStartedLoggedChargedOnceAndDeleted(t *testing.T) {
	r := newRig(t)
	o := r.accept(1000, items("widget", 2)...)
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	got := r.order(o.ID)
	if got.Status != orderflow.StatusCompleted || got.Failure != nil {
		t.Errorf("order = %s with failure %+v, want COMPLETED without", got.Status, got.Failure)
	}
	if n := r.charges(o.ID); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if n := r.stock("widget"); n != 98 {
		t.Errorf("widget stock = %d, want 98", n)
	}
	lines := r.logs.Messages("order transition")
	if len(lines) != 2 {
		t.Fatalf("transition lines = %v, want PENDING→PROCESSING, PROCESSING→COMPLETED", lines)
	}
	for i, to := range []string{"PROCESSING", "COMPLETED"} {
		l := lines[i]
		if l["to"] != to || l["order_id"] != string(o.ID) || l["user_id"] != "u1" || l["request_id"] != o.RequestID {
			t.Errorf("line %d = %v, want to=%s with order_id, user_id and request_id", i, l, to)
		}
	}
}

func TestOnSQLiteBusinessDeclinesAreRejected(t *testing.T) {
	r := newRig(t)
	outOfStock := r.accept(1000, items("gizmo", 6)...)
	declined := r.accept(1002, items("widget", 1)...) // the gateway declines amounts ending in 02
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	for id, reason := range map[orderflow.OrderID]string{outOfStock.ID: orderflow.ReasonOutOfStock, declined.ID: orderflow.ReasonPaymentDeclined} {
		if got := r.order(id); got.Status != orderflow.StatusRejected || got.Failure == nil || got.Failure.Code != reason {
			t.Errorf("order %s = %s with %+v, want REJECTED for %s", id, got.Status, got.Failure, reason)
		}
	}
	if r.stock("gizmo") != 5 || r.stock("widget") != 100 {
		t.Errorf("stock gizmo %d, widget %d; want 5 and 100 (nothing kept)", r.stock("gizmo"), r.stock("widget"))
	}
}

func TestOnSQLitePersistentTransientErrorsEndFailedInTheDLQ(t *testing.T) {
	r := newRig(t)
	o := r.accept(1004, items("widget", 3)...) // the gateway always fails amounts ending in 04
	r.start()
	r.waitQueue(orderflow.QueueDepth{Dead: 1})
	got := r.order(o.ID)
	if got.Status != orderflow.StatusFailed || got.Failure == nil || got.Failure.Code != orderflow.ReasonProcessingFailed {
		t.Errorf("order = %s with %+v, want FAILED for %s", got.Status, got.Failure, orderflow.ReasonProcessingFailed)
	}
	if n := r.stock("widget"); n != 100 {
		t.Errorf("widget stock = %d, want 100 (given back)", n)
	}
	if n := r.charges(o.ID); n != 0 {
		t.Errorf("charges = %d, want none", n)
	}
}

func TestOnSQLiteAPoisonMessageReachesTheDLQ(t *testing.T) {
	r := newRig(t)
	if err := r.db.SendRaw(context.Background(), []byte(`{"order_id":`)); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.waitQueue(orderflow.QueueDepth{Dead: 1})
	if n := len(r.logs.Messages("poison message: cannot decode; it goes to the dead-letter queue after max receives")); n != testMaxReceives {
		t.Errorf("poison attempts logged = %d, want %d", n, testMaxReceives)
	}
}

func TestOnSQLiteAMessageWithoutItsOrderReachesTheDLQ(t *testing.T) {
	r := newRig(t)
	if err := r.db.Send(context.Background(), orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.waitQueue(orderflow.QueueDepth{Dead: 1})
	if n := len(r.logs.Messages("order not found (yet); will retry")); n != testMaxReceives {
		t.Errorf("not-found attempts logged = %d, want %d", n, testMaxReceives)
	}
}

func TestOnSQLiteTransientPaymentErrorsAreRetriedAndChargeOnce(t *testing.T) {
	r := newRig(t)
	o := r.accept(1003, items("widget", 1)...) // the gateway fails amounts ending in 03 twice
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	if got := r.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("status = %s, want COMPLETED", got)
	}
	if r.charges(o.ID) != 1 || r.stock("widget") != 99 {
		t.Errorf("charges = %d, stock = %d; want 1 and 99 (reserved once)", r.charges(o.ID), r.stock("widget"))
	}
	if n := len(r.logs.Messages("transient error; will retry")); n != 2 {
		t.Errorf("retries logged = %d, want 2", n)
	}
}

// Copies of one order's message, received in one batch or several, start
// it once (one PENDING → PROCESSING line) and charge it once.
func TestOnSQLiteDuplicatesStartAndChargeOnce(t *testing.T) {
	r := newRig(t)
	o := r.accept(1000, items("widget", 1)...)
	for range 4 {
		if err := r.db.Send(context.Background(), orderflow.Message{OrderID: o.ID, RequestID: o.RequestID}); err != nil {
			t.Fatal(err)
		}
	}
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	if got := r.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("status = %s, want COMPLETED", got)
	}
	if r.charges(o.ID) != 1 || r.stock("widget") != 99 {
		t.Errorf("charges = %d, stock = %d; want 1 and 99", r.charges(o.ID), r.stock("widget"))
	}
	if lines := r.logs.Messages("order transition"); len(lines) != 2 {
		t.Errorf("transition lines = %v, want PENDING→PROCESSING and PROCESSING→COMPLETED once each", lines)
	}
}

// Two processors, each on its own work queue of one database, work every
// order (each queued twice) once.
func TestOnSQLiteTwoProcessorsChargeOnce(t *testing.T) {
	r := newRig(t)
	var ids []orderflow.OrderID
	for i := range 20 {
		o := r.accept(int64(1000+i*100), items("widget", 1)...)
		if err := r.db.Send(context.Background(), orderflow.Message{OrderID: o.ID}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	r.start()
	r.run(r.newProcessor())
	r.waitQueue(orderflow.QueueDepth{})
	for _, id := range ids {
		if got := r.order(id).Status; got != orderflow.StatusCompleted {
			t.Errorf("order %s is %s, want COMPLETED", id, got)
		}
		if n := r.charges(id); n != 1 {
			t.Errorf("order %s has %d charges, want 1", id, n)
		}
	}
	if n := r.stock("widget"); n != 100-len(ids) {
		t.Errorf("widget stock = %d, want %d", n, 100-len(ids))
	}
	if n := len(r.logs.Messages("order transition")); n != 2*len(ids) {
		t.Errorf("transition lines = %d, want %d (two per order)", n, 2*len(ids))
	}
}

// waitFor waits for cond, failing the test after a generous deadline (a
// safety net, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
