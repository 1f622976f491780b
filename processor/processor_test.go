package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
)

// harness runs a Processor against the fakes.
type harness struct {
	t      *testing.T
	q      *fakeQueue
	s      *fakeStore
	ledger *fakeLedger
	reg    *prometheus.Registry
	logs   *logtest.Buffer
	cfg    Config
	deps   Deps
	p      *Processor
	cancel context.CancelFunc
	done   chan error
}

const testMaxReceives = 3

func newHarness(t *testing.T, configure ...func(*harness)) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		q:      newFakeQueue(5*time.Second, testMaxReceives),
		s:      newFakeStore(),
		ledger: newFakeLedger(),
		reg:    prometheus.NewRegistry(),
		logs:   &logtest.Buffer{},
		cfg: Config{
			Env:                "test",
			Concurrency:        8,
			WaitTime:           5 * time.Millisecond,
			BackoffBase:        time.Millisecond,
			BackoffMax:         4 * time.Millisecond,
			ReceiveBackoffBase: time.Millisecond,
			ReceiveBackoffMax:  4 * time.Millisecond,
			DrainTimeout:       10 * time.Second,
			StageTimeout:       10 * time.Second,
			DeleteDelay:        time.Millisecond,
		},
	}
	h.s.stock = map[string]int{"widget": 100, "gizmo": 5}
	h.deps = Deps{
		Queue:      h.q,
		Store:      h.s,
		Inventory:  h.s,
		Fraud:      NewRules(RulesConfig{}, h.s),
		Payment:    NewSimulatedGateway(GatewayConfig{Latency: time.Millisecond}, h.ledger, time.Now),
		Logger:     slog.New(orderflow.LogHandler(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		Registerer: h.reg,
	}
	for _, c := range configure {
		c(h)
	}
	p, err := New(h.cfg, h.deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// As Run does before it receives, for the tests that call the
	// processor's parts directly.
	if err := p.learnPolicy(context.Background()); err != nil {
		t.Fatalf("learnPolicy: %v", err)
	}
	h.p = p
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	})
	return h
}

// start runs the processor until the test ends or stop is called.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		<-h.done
	})
}

// stop cancels Run and returns its result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return after cancel")
		return nil
	}
}

// order stores a PENDING order and returns it (not yet queued).
func (h *harness) order(amount int64, items ...orderflow.Item) orderflow.Order {
	now := time.Now()
	o := orderflow.Order{
		ID: orderflow.NewOrderID(now), UserID: "u1", Amount: amount, Currency: "USD", Items: items,
		Status: orderflow.StatusPending, RequestID: "req-" + fmt.Sprint(amount), CreatedAt: now, UpdatedAt: now,
	}
	h.s.put(o)
	return o
}

// send queues a message for o and returns its message id.
func (h *harness) send(o orderflow.Order) string {
	return h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: o.ID, RequestID: o.RequestID}))
}

// eventually waits for cond, failing the test after a generous deadline
// (a safety net, not a timing assertion).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	waitFor(h.t, what, cond)
}

// recv waits for a value on ch, failing the test after a generous deadline.
func (h *harness) recv(ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("timed out waiting for %s", what)
	}
}

func (h *harness) waitStatus(id orderflow.OrderID, want orderflow.Status) orderflow.Order {
	h.t.Helper()
	h.eventually(fmt.Sprintf("order %s to be %s", id, want), func() bool { return h.s.order(id).Status == want })
	return h.s.order(id)
}

func (h *harness) waitDeleted(msgID string) {
	h.t.Helper()
	h.eventually("message "+msgID+" to be deleted", func() bool { deleted, _, _ := h.q.state(msgID); return deleted })
}

func (h *harness) waitDead(msgID string) {
	h.t.Helper()
	h.eventually("message "+msgID+" to be dead-lettered", func() bool { _, dead, _ := h.q.state(msgID); return dead })
}

func (h *harness) processed(status string) float64 {
	return testutil.ToFloat64(h.p.metrics.processed.WithLabelValues("test", status))
}

func items(spec ...any) []orderflow.Item {
	var its []orderflow.Item
	for i := 0; i < len(spec); i += 2 {
		its = append(its, orderflow.Item{SKU: spec[i].(string), Quantity: spec[i+1].(int)})
	}
	return its
}

func TestHappyPathCompletesChargesOnceAndDeletes(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1000, items("widget", 2)...)
	msg := h.send(o)

	got := h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.waitDeleted(msg)
	if got.Failure != nil {
		t.Errorf("failure = %+v, want none", got.Failure)
	}
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if n := h.s.stockOf("widget"); n != 98 {
		t.Errorf("widget stock = %d, want 98", n)
	}
	want := `
# HELP orders_processed_total ` + orderflow.OrdersProcessedHelp + `
# TYPE orders_processed_total counter
orders_processed_total{env="test",status="cancelled"} 0
orders_processed_total{env="test",status="error"} 0
orders_processed_total{env="test",status="rejected"} 0
orders_processed_total{env="test",status="success"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "orders_processed_total"); err != nil {
		t.Error(err)
	}
	for _, stage := range []string{stageInventory, stageFraud, stagePayment, stageTotal} {
		if n := testutil.CollectAndCount(h.p.metrics.duration, "order_processing_duration_seconds"); n != 4 {
			t.Fatalf("duration series = %d, want 4", n)
		}
		h.eventually("a "+stage+" observation", func() bool { return histogramCount(t, h.reg, stage) == 1 })
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, stage string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "order_processing_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestEveryTransitionIsLoggedWithTheOrderUserAndRequest(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1000)
	h.waitDeleted(h.send(o))
	checkTransitionLogs(t, h, o)
}

func TestBusinessDeclinesAreRejected(t *testing.T) {
	tests := []struct {
		name   string
		amount int64
		items  []orderflow.Item
		reason string
	}{
		{"an order for more than the stock is rejected out of stock", 1000, items("gizmo", 6), orderflow.ReasonOutOfStock},
		{"an order for an unknown SKU is rejected", 1000, items("nope", 1), orderflow.ReasonUnknownSKU},
		{"a suspicious order is rejected and its stock released", 500_000, items("widget", 3), orderflow.ReasonFraudSuspected},
		{"a declined payment is rejected and its stock released", 1002, items("widget", 3, "gizmo", 1), orderflow.ReasonPaymentDeclined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.start()
			o := h.order(tt.amount, tt.items...)
			msg := h.send(o)
			got := h.waitStatus(o.ID, orderflow.StatusRejected)
			h.waitDeleted(msg)
			if got.Failure == nil || got.Failure.Code != tt.reason || got.Failure.Detail == "" {
				t.Errorf("failure = %+v, want code %s with a detail", got.Failure, tt.reason)
			}
			if n := h.ledger.count(); n != 0 {
				t.Errorf("charges = %d, want 0", n)
			}
			if w, g := h.s.stockOf("widget"), h.s.stockOf("gizmo"); w != 100 || g != 5 {
				t.Errorf("stock widget=%d gizmo=%d, want 100 and 5 (nothing kept)", w, g)
			}
			if n := h.processed(statusRejected); n != 1 {
				t.Errorf("rejected = %v, want 1", n)
			}
		})
	}
}

func TestTransientPaymentErrorsAreRetriedAndChargeOnce(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1003, items("widget", 1)...) // fails twice, then succeeds on the 3rd (last) receive
	msg := h.send(o)
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.waitDeleted(msg)
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if n := h.s.stockOf("widget"); n != 99 {
		t.Errorf("widget stock = %d, want 99 (reserved once)", n)
	}
	// Two retries, each hidden for a backoff within [base/2·2^(n-1), max].
	ch := h.q.changes(msg)
	if len(ch) != 2 {
		t.Fatalf("visibility changes = %v, want 2 backoffs", ch)
	}
	for i, d := range ch {
		if want := backoff(h.cfg.BackoffBase, h.cfg.BackoffMax, i+1, msg); d != want {
			t.Errorf("backoff %d = %s, want %s", i+1, d, want)
		}
	}
	if n := testutil.ToFloat64(h.p.metrics.retries.WithLabelValues("transient")); n != 2 {
		t.Errorf("transient retries = %v, want 2", n)
	}
}

func TestPersistentTransientErrorsEndFailedInTheDLQ(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1004, items("widget", 4)...)
	msg := h.send(o)
	got := h.waitStatus(o.ID, orderflow.StatusFailed)
	h.waitDead(msg)
	if got.Failure == nil || got.Failure.Code != orderflow.ReasonProcessingFailed || !strings.Contains(got.Failure.Detail, "payment") {
		t.Errorf("failure = %+v, want processing_failed naming the payment", got.Failure)
	}
	if _, _, n := h.q.state(msg); n != testMaxReceives {
		t.Errorf("receives before the DLQ = %d, want %d", n, testMaxReceives)
	}
	if n := h.s.stockOf("widget"); n != 100 {
		t.Errorf("widget stock = %d, want 100 (released)", n)
	}
	if n := h.ledger.count(); n != 0 {
		t.Errorf("charges = %d, want 0", n)
	}
	if n := h.processed(statusError); n != 1 {
		t.Errorf("error = %v, want 1", n)
	}
	// The last attempt made the message visible at once for the DLQ.
	ch := h.q.changes(msg)
	if len(ch) != testMaxReceives || ch[len(ch)-1] != 0 {
		t.Errorf("visibility changes = %v, want %d ending with 0", ch, testMaxReceives)
	}
}

// TestTheLastAttemptIsTheQueuesMaxReceives: the processor gives up on the
// receive the queue's policy makes the last, not on one of its own.
func TestTheLastAttemptIsTheQueuesMaxReceives(t *testing.T) {
	const maxReceives = 5
	h := newHarness(t, func(h *harness) {
		h.q = newFakeQueue(5*time.Second, maxReceives)
		h.deps.Queue = h.q
	})
	h.start()
	o := h.order(1004, items("widget", 1)...) // the gateway always fails amounts ending in 04
	h.send(o)
	got := h.waitStatus(o.ID, orderflow.StatusFailed)
	if got.Failure == nil || !strings.Contains(got.Failure.Detail, "after 5 attempts") {
		t.Errorf("failure = %+v, want it FAILED after the queue's 5 attempts", got.Failure)
	}
	if n := len(h.logs.Messages("transient error; will retry")); n != maxReceives-1 {
		t.Errorf("retries logged = %d, want %d", n, maxReceives-1)
	}
}

// An order without items has nothing to reserve: the inventory stage is
// neither run nor timed for it.
func TestAnOrderWithoutItemsSkipsTheInventory(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1000)
	h.waitDeleted(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("status = %s, want COMPLETED", got)
	}
	h.eventually("a fraud observation", func() bool { return histogramCount(t, h.reg, stageFraud) == 1 })
	if n := histogramCount(t, h.reg, stageInventory); n != 0 {
		t.Errorf("inventory observations = %d, want 0", n)
	}
}

// TestAStaleViewIsResolvedByTheConditionalWrite: a move from a status the
// order has left is retried from the status the store returns if the
// order can still get there, and is nothing to do if the order is final.
func TestAStaleViewIsResolvedByTheConditionalWrite(t *testing.T) {
	tests := []struct {
		name    string
		stored  orderflow.Status
		want    orderflow.Status
		wantLog string // the transition logged, if any
	}{
		{"an order started meanwhile is moved on from where it is", orderflow.StatusProcessing, orderflow.StatusFailed, "PROCESSING→FAILED"},
		{"an order finished meanwhile is left as it is", orderflow.StatusCompleted, orderflow.StatusCompleted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			o := h.order(1000)
			stale := o // the attempt saw it PENDING
			o.Status = tt.stored
			h.s.put(o)
			a := &attempt{o: stale, start: time.Now()}
			f := &orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: "x"}
			done, err := h.p.move(context.Background(), a, orderflow.StatusFailed, f)
			if err != nil || !done {
				t.Fatalf("move = %v, %v; want done", done, err)
			}
			if got := h.s.order(o.ID).Status; got != tt.want || a.o.Status != tt.want {
				t.Errorf("order stored %s, seen %s; want %s", got, a.o.Status, tt.want)
			}
			var logged []string
			for _, l := range h.logs.Messages("order transition") {
				logged = append(logged, fmt.Sprintf("%s→%s", l["from"], l["to"]))
			}
			if want := []string{tt.wantLog}; tt.wantLog == "" && len(logged) != 0 || tt.wantLog != "" && fmt.Sprint(logged) != fmt.Sprint(want) {
				t.Errorf("transitions logged %v, want %q", logged, tt.wantLog)
			}
		})
	}
}

func TestRedeliveryOfAFinishedOrderIsDeletedWithoutEffects(t *testing.T) {
	for _, amount := range []int64{1000, 1002, 1004} { // COMPLETED, REJECTED, FAILED
		t.Run(fmt.Sprint(amount), func(t *testing.T) {
			h := newHarness(t)
			h.start()
			o := h.order(amount, items("widget", 1)...)
			h.send(o)
			h.eventually("a final status", func() bool { return h.s.order(o.ID).Status.Terminal() })
			h.eventually("the first message to leave the queue", func() bool { return h.q.pending() == 0 })
			before := h.s.order(o.ID)
			charges, stock := h.ledger.count(), h.s.stockOf("widget")

			h.waitDeleted(h.send(o)) // a redelivery, or a redrive from the DLQ
			if got := h.s.order(o.ID); got.Status != before.Status || !got.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("order changed to %+v", got)
			}
			if h.ledger.count() != charges || h.s.stockOf("widget") != stock {
				t.Errorf("charges %d→%d, stock %d→%d; want no change", charges, h.ledger.count(), stock, h.s.stockOf("widget"))
			}
			total := h.processed(statusSuccess) + h.processed(statusRejected) + h.processed(statusError)
			if total != 1 {
				t.Errorf("orders processed = %v, want 1", total)
			}
		})
	}
}

// A message of an order whose home region is another (a region's queue
// still holding the messages of orders another region took over, or an
// idempotent retry that landed in another region) is deleted with no
// effect, whether the order is still PENDING or in work over there: its
// region works it, and a write from here would race that region's by
// last writer wins.
func TestAnotherRegionsOrderIsDeletedWithoutEffects(t *testing.T) {
	for _, status := range []orderflow.Status{orderflow.StatusPending, orderflow.StatusProcessing} {
		t.Run(string(status), func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.cfg.Region = "us-east-1"; h.s.region = "us-east-1" })
			h.start()
			o := h.order(1000, items("widget", 1)...)
			o.Region, o.Status = "eu-west-1", status
			h.s.put(o)
			h.waitDeleted(h.send(o))
			if got := h.s.order(o.ID); got.Status != status || got.Region != "eu-west-1" {
				t.Errorf("order changed to %s in %q, want %s in eu-west-1", got.Status, got.Region, status)
			}
			if h.ledger.count() != 0 || h.s.stockOf("widget") != 100 {
				t.Errorf("charges %d, widget stock %d; want none taken", h.ledger.count(), h.s.stockOf("widget"))
			}
		})
	}
}

func TestConcurrentDuplicatesChargeOnce(t *testing.T) {
	h := newHarness(t)
	o := h.order(1000, items("widget", 1)...)
	for range 5 {
		h.send(o)
	}
	h.start()
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.eventually("every copy to leave the main queue", func() bool { return h.q.pending() == 0 })
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if n := h.s.stockOf("widget"); n != 99 {
		t.Errorf("widget stock = %d, want 99", n)
	}
	if n := h.processed(statusSuccess); n != 1 {
		t.Errorf("success = %v, want 1", n)
	}
}

func TestDuplicateMessagesOfAnOrderInWorkAreDeleted(t *testing.T) {
	var pay *blockingPayment
	h := newHarness(t, func(h *harness) {
		pay = newBlockingPayment(h.deps.Payment)
		h.deps.Payment = pay
	})
	o := h.order(1000, items("widget", 1)...)
	first := h.send(o)
	h.start()
	h.recv(pay.entered, "the first copy to reach the payment stage")
	var dups []string
	for range 4 {
		dups = append(dups, h.send(o))
	}
	for _, m := range dups {
		h.waitDeleted(m)
	}
	if deleted, _, _ := h.q.state(first); deleted {
		t.Fatal("the message in work was deleted before its order was final")
	}
	close(pay.release)
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.waitDeleted(first)
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
}

func TestMessageBackWhileStillInWorkIsPutBack(t *testing.T) {
	var pay *blockingPayment
	h := newHarness(t, func(h *harness) {
		h.q.vt = time.Millisecond // the queue's visibility lapses: no heartbeat in time
		pay = newBlockingPayment(h.deps.Payment)
		h.deps.Payment = pay
	})
	o := h.order(1000)
	msg := h.send(o)
	h.start()
	h.recv(pay.entered, "the order to reach the payment stage")
	h.eventually("the message to come back while in work", func() bool {
		return testutil.ToFloat64(h.p.metrics.retries.WithLabelValues("busy")) >= 1
	})
	close(pay.release)
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.eventually("the message to leave the main queue", func() bool { return h.q.pending() == 0 })
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if _, _, n := h.q.state(msg); n > testMaxReceives {
		t.Errorf("receives = %d, want at most %d", n, testMaxReceives)
	}
}

func TestTwoProcessorsOnOneQueueChargeOnce(t *testing.T) {
	h := newHarness(t)
	other := newHarness(t, func(o *harness) {
		o.q, o.s, o.ledger = h.q, h.s, h.ledger
		o.deps.Queue, o.deps.Store, o.deps.Inventory = h.q, h.s, h.s
		o.deps.Fraud = NewRules(RulesConfig{}, h.s)
		o.deps.Payment = NewSimulatedGateway(GatewayConfig{Latency: time.Millisecond}, h.ledger, time.Now)
	})
	var ids []orderflow.OrderID
	for i := range 20 {
		o := h.order(int64(1000+i*100), items("widget", 1)...)
		ids = append(ids, o.ID)
		h.send(o)
		h.send(o) // every order twice
	}
	h.start()
	other.start()
	for _, id := range ids {
		h.waitStatus(id, orderflow.StatusCompleted)
	}
	h.eventually("the queue to empty", func() bool { return h.q.pending() == 0 })
	if n := h.ledger.count(); n != len(ids) {
		t.Errorf("charges = %d, want %d", n, len(ids))
	}
	if n := h.s.stockOf("widget"); n != 100-len(ids) {
		t.Errorf("widget stock = %d, want %d", n, 100-len(ids))
	}
	if n := h.processed(statusSuccess) + other.processed(statusSuccess); n != float64(len(ids)) {
		t.Errorf("success = %v, want %d", n, len(ids))
	}
}

// TestPoisonMessageIsNeverDeletedAndReachesTheDLQ: a poison message is
// received MaxReceives times on its way to the dead-letter queue and
// counted once: processor_poison_messages_total counts messages.
func TestPoisonMessageIsNeverDeletedAndReachesTheDLQ(t *testing.T) {
	const maxReceives = 5
	h := newHarness(t, func(h *harness) {
		h.q = newFakeQueue(5*time.Second, maxReceives)
		h.deps.Queue = h.q
	})
	h.start()
	msg := h.q.SendRaw([]byte(`{"order_id": 42, "garbage": true}`))
	h.waitDead(msg)
	if deleted, _, receives := h.q.state(msg); deleted || receives != maxReceives {
		t.Errorf("poison message deleted=%v after %d receives, want kept after %d", deleted, receives, maxReceives)
	}
	if n := testutil.ToFloat64(h.p.metrics.poison); n != 1 {
		t.Errorf("poison count = %v, want 1 (one message)", n)
	}
	if total := h.processed(statusSuccess) + h.processed(statusRejected) + h.processed(statusError); total != 0 {
		t.Errorf("orders processed = %v, want 0", total)
	}
}

func TestPoisonMessageNamingAPendingOrderFailsItOnTheLastReceive(t *testing.T) {
	h := newHarness(t)
	h.start()
	pending := h.order(1000)
	started := h.order(2000)
	h.s.mu.Lock()
	o := h.s.orders[started.ID]
	o.Status = orderflow.StatusProcessing
	h.s.orders[started.ID] = o
	h.s.mu.Unlock()
	m1 := h.q.SendRaw([]byte(`{"order_id":"` + string(pending.ID) + `","unexpected":1}`))
	m2 := h.q.SendRaw([]byte(`{"order_id":"` + string(started.ID) + `","unexpected":1}`))
	h.waitDead(m1)
	h.waitDead(m2)
	got := h.s.order(pending.ID)
	if got.Status != orderflow.StatusFailed || got.Failure == nil || got.Failure.Code != orderflow.ReasonDeadLettered {
		t.Errorf("pending order: status %s failure %+v, want FAILED dead_lettered", got.Status, got.Failure)
	}
	if got := h.s.order(started.ID).Status; got != orderflow.StatusProcessing {
		t.Errorf("started order: status %s, want PROCESSING (it may hold stock or a charge)", got)
	}
	if n := h.processed(statusError); n != 1 {
		t.Errorf("error = %v, want 1", n)
	}
}

func TestOrderNotFoundIsRetriedUntilItAppears(t *testing.T) {
	h := newHarness(t)
	o := h.order(1000)
	late := o
	h.s.mu.Lock()
	delete(h.s.orders, o.ID)
	h.s.mu.Unlock()
	gets := 0
	h.s.onGet = func(orderflow.OrderID) { // the store write lags the queue send
		gets++
		if gets == 2 {
			h.s.put(late)
		}
	}
	h.start()
	msg := h.send(o)
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.waitDeleted(msg)
	if n := testutil.ToFloat64(h.p.metrics.retries.WithLabelValues("not_found")); n != 1 {
		t.Errorf("not_found retries = %v, want 1", n)
	}
}

func TestOrderThatNeverExistsGoesToTheDLQ(t *testing.T) {
	h := newHarness(t)
	h.start()
	msg := h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}))
	h.waitDead(msg)
}

func TestStoreOutageIsRetried(t *testing.T) {
	h := newHarness(t)
	h.s.getErrs = 2
	h.start()
	o := h.order(1000)
	h.waitDeleted(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("status = %s, want COMPLETED", got)
	}
}

func TestUnreadableOrderOnTheLastAttemptIsLeftForTheDLQ(t *testing.T) {
	h := newHarness(t)
	h.s.getErrs = 1000
	h.start()
	o := h.order(1000)
	h.waitDead(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusPending {
		t.Errorf("status = %s, want PENDING (nothing could be written)", got)
	}
}

func TestPaidOrderIsNeverMarkedFailed(t *testing.T) {
	h := newHarness(t)
	h.s.failTo[orderflow.StatusCompleted] = true // the store refuses the last write
	h.start()
	o := h.order(1000, items("widget", 1)...)
	msg := h.send(o)
	h.waitDead(msg)
	if got := h.s.order(o.ID); got.Status != orderflow.StatusProcessing {
		t.Errorf("status = %s, want PROCESSING (left for a redrive, not FAILED)", got.Status)
	}
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if n := h.s.stockOf("widget"); n != 99 {
		t.Errorf("widget stock = %d, want 99 (kept for the paid order)", n)
	}

	// The operator redrives once the store is back: completed, not charged again.
	h.s.mu.Lock()
	h.s.failTo = map[orderflow.Status]bool{}
	h.s.mu.Unlock()
	h.waitDeleted(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("after redrive: status = %s, want COMPLETED", got)
	}
	if n := h.ledger.count(); n != 1 {
		t.Errorf("after redrive: charges = %d, want 1", n)
	}
}

func TestFailureThatCannotReleaseStockIsLeftForTheDLQ(t *testing.T) {
	h := newHarness(t)
	h.s.releaseErr = orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	h.start()
	o := h.order(1004, items("widget", 1)...)
	h.waitDead(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusProcessing {
		t.Errorf("status = %s, want PROCESSING (FAILED only once the stock is back)", got)
	}
}

func TestFailedRecordThatCannotBeWrittenIsLeftForTheDLQ(t *testing.T) {
	h := newHarness(t)
	h.s.failTo[orderflow.StatusFailed] = true
	h.start()
	o := h.order(1004)
	h.waitDead(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusProcessing {
		t.Errorf("status = %s, want PROCESSING", got)
	}
	if n := h.processed(statusError); n != 0 {
		t.Errorf("error = %v, want 0", n)
	}
}

// blockingPayment waits in Charge until released, then charges through next.
type blockingPayment struct {
	next    Payment
	entered chan struct{} // receives once per Charge call
	release chan struct{}
}

func newBlockingPayment(next Payment) *blockingPayment {
	return &blockingPayment{next: next, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blockingPayment) Charge(ctx context.Context, req ChargeRequest) (orderflow.Charge, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return orderflow.Charge{}, ctx.Err()
	}
	return b.next.Charge(ctx, req)
}

func (b *blockingPayment) Charged(ctx context.Context, key string) (bool, error) {
	return b.next.Charged(ctx, key)
}

func (b *blockingPayment) Refund(ctx context.Context, key string, id orderflow.OrderID) (orderflow.Refund, error) {
	return b.next.Refund(ctx, key, id)
}

func TestOrderPaidByAnAttemptThatDiedCompletes(t *testing.T) {
	tests := []struct {
		name      string
		configure func(h *harness)
	}{
		{"a stage that now fails on the last attempt", func(h *harness) { h.s.reserveErr = orderflow.Unavailable(errors.New("timeout"), "store unreachable") }},
		{"a fraud check that would now reject", func(h *harness) { h.deps.Fraud = rejectAll{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.configure)
			// An earlier attempt reserved, charged and died before
			// recording COMPLETED: the order is PROCESSING and paid.
			o := h.order(1000, items("widget", 1)...)
			o.Status = orderflow.StatusProcessing
			h.s.put(o)
			h.s.mu.Lock()
			h.s.stock["widget"]--
			h.s.reserved[o.ID] = o.Items
			h.s.outcome[o.ID] = nil
			h.s.mu.Unlock()
			if _, _, err := h.ledger.RecordCharge(context.Background(), orderflow.Charge{ID: "ch_1", IdempotencyKey: string(o.ID), OrderID: o.ID, Amount: o.Amount, Currency: o.Currency}); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.waitDeleted(h.send(o))
			if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
				t.Errorf("status = %s, want COMPLETED (the customer paid)", got)
			}
			if n := h.ledger.count(); n != 1 {
				t.Errorf("charges = %d, want 1", n)
			}
			if n := h.s.stockOf("widget"); n != 99 {
				t.Errorf("widget stock = %d, want 99 (kept for the paid order)", n)
			}
		})
	}
}

func TestPaymentLookupFailureOnTheLastAttemptIsLeftForTheDLQ(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.deps.Payment = unknownPayment{h.deps.Payment} })
	o := h.order(1000)
	o.Status = orderflow.StatusProcessing
	h.s.put(o)
	h.start()
	h.waitDead(h.send(o))
	if got := h.s.order(o.ID).Status; got != orderflow.StatusProcessing {
		t.Errorf("status = %s, want PROCESSING (not FAILED while the payment is unknown)", got)
	}
}

// rejectAll is a fraud check that rejects every order.
type rejectAll struct{}

func (rejectAll) Check(context.Context, orderflow.Order) (*orderflow.Failure, error) {
	return &orderflow.Failure{Code: orderflow.ReasonFraudSuspected, Detail: "rejected by the test"}, nil
}

// unknownPayment cannot say whether a charge went through.
type unknownPayment struct{ Payment }

func (unknownPayment) Charged(context.Context, string) (bool, error) {
	return false, errors.New("gateway unreachable")
}

func TestGracefulDrainFinishesTheOrderInWork(t *testing.T) {
	var pay *blockingPayment
	h := newHarness(t, func(h *harness) {
		h.cfg.Concurrency = 1 // the second message waits for a slot
		pay = newBlockingPayment(h.deps.Payment)
		h.deps.Payment = pay
	})
	first := h.order(1000)
	second := h.order(2000)
	m1 := h.send(first)
	h.start()
	h.recv(pay.entered, "the first order to reach the payment stage")
	m2 := h.send(second)

	h.cancel() // SIGTERM
	select {
	case <-h.done:
		t.Fatal("Run returned while an order was in the payment stage")
	default:
	}
	close(pay.release)
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := h.s.order(first.ID).Status; got != orderflow.StatusCompleted {
		t.Errorf("order in work: status = %s, want COMPLETED", got)
	}
	if deleted, _, _ := h.q.state(m1); !deleted {
		t.Error("the finished order's message was not deleted before Run returned")
	}
	if deleted, dead, n := h.q.state(m2); deleted || dead || n != 0 {
		t.Errorf("message sent during the drain: deleted=%v dead=%v receives=%d; want untouched", deleted, dead, n)
	}
	if got := h.s.order(second.ID).Status; got != orderflow.StatusPending {
		t.Errorf("order sent during the drain: status = %s, want PENDING", got)
	}
}

func TestDrainTimeoutAbandonsUnchangedForRedelivery(t *testing.T) {
	var pay *blockingPayment
	h := newHarness(t, func(h *harness) {
		h.cfg.DrainTimeout = time.Millisecond
		pay = newBlockingPayment(h.deps.Payment)
		h.deps.Payment = pay
	})
	o := h.order(1000, items("widget", 1)...)
	msg := h.send(o)
	h.start()
	h.recv(pay.entered, "the order to reach the payment stage")
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := h.s.order(o.ID).Status; got != orderflow.StatusProcessing {
		t.Errorf("status = %s, want PROCESSING (not FAILED: the next worker finishes it)", got)
	}
	if deleted, dead, _ := h.q.state(msg); deleted || dead {
		t.Errorf("message deleted=%v dead=%v, want it kept for redelivery", deleted, dead)
	}
	if ch := h.q.changes(msg); len(ch) != 1 || ch[0] != 0 {
		t.Errorf("visibility changes = %v, want [0] (visible again at once)", ch)
	}
	if n := h.ledger.count(); n != 0 {
		t.Errorf("charges = %d, want 0", n)
	}
}

func TestHeartbeatExtendsVisibilityOfASlowOrder(t *testing.T) {
	const vt = 300 * time.Millisecond
	var pay *blockingPayment
	extended := make(chan struct{}, 100)
	h := newHarness(t, func(h *harness) {
		// The fake queue keeps the message hidden whatever the heartbeat
		// asks, so that a late heartbeat on a loaded machine cannot make
		// it come back: this test is about the heartbeat being sent.
		h.q.vt = time.Hour
		h.q.holdVisibility = true
		h.q.policyVT = vt
		pay = newBlockingPayment(h.deps.Payment)
		h.deps.Payment = pay
	})
	h.q.onVis = func(c visChange) {
		if c.timeout == vt {
			select {
			case extended <- struct{}{}:
			default:
			}
		}
	}
	o := h.order(1000)
	msg := h.send(o)
	h.start()
	h.recv(pay.entered, "the order to reach the payment stage")
	// The payment is slow: the heartbeat keeps the message hidden.
	h.recv(extended, "a first heartbeat")
	h.recv(extended, "a second heartbeat")
	close(pay.release)
	h.waitStatus(o.ID, orderflow.StatusCompleted)
	h.waitDeleted(msg)
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
}

func TestReceiveErrorsPauseThenRecover(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.Receivers = 1 })
	h.q.failRecv = 3
	h.start()
	o := h.order(1000)
	h.waitDeleted(h.send(o))
	if n := h.q.receiveCalls(); n < 4 {
		t.Errorf("receive calls = %d, want at least 4 (3 failures, then success)", n)
	}
	// The first failure is logged at once, the two that follow within the
	// interval are counted and written when the processor stops.
	if n := len(h.logs.Messages("receive failed; pausing")); n != 1 {
		t.Errorf("%d pause lines while running, want 1 (repeats held back)", n)
	}
	if n := len(h.logs.Messages("receive recovered")); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	pauses := h.logs.Messages("receive failed; pausing")
	if len(pauses) != 2 || pauses[1]["repeated"] != float64(2) {
		t.Errorf("pause lines after the stop: %v, want the first and one with repeated=2", pauses)
	}
}

func TestFailedDeleteMeansAHarmlessRedelivery(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.q.vt = 30 * time.Millisecond
	})
	o := h.order(1000)
	msg := h.send(o)
	h.q.failDelete[msg] = true
	h.start()
	h.waitDeleted(msg)
	if n := h.ledger.count(); n != 1 {
		t.Errorf("charges = %d, want 1", n)
	}
	if len(h.logs.Messages("delete message; it will be redelivered and deleted then")) == 0 {
		t.Error("the failed delete was not logged")
	}
}

func TestDeletesAreBatched(t *testing.T) {
	tests := []struct {
		name     string
		receipts int
		batches  []int
	}{
		{"three finished messages are deleted in one call", 3, []int{3}},
		{"twenty-five are deleted in calls of at most ten", 25, []int{10, 10, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.cfg.DeleteDelay = time.Hour })
			r := &run{p: h.p, deletes: make(chan finished, tt.receipts), stopDel: make(chan struct{})}
			for i := range tt.receipts {
				r.deletes <- finished{receipt: fmt.Sprintf("r%d", i)}
			}
			close(r.stopDel)
			r.deleter(context.Background())
			var got []int
			for _, c := range h.q.deleteCall {
				got = append(got, len(c))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.batches) {
				t.Errorf("batches = %v, want %v", got, tt.batches)
			}
		})
	}
}

func TestDeleteErrorIsLogged(t *testing.T) {
	h := newHarness(t)
	q := &failingDeleteQueue{fakeQueue: h.q}
	h.p.queue = q
	h.p.deleteBatch(context.Background(), []finished{{receipt: "a"}, {receipt: "b"}})
	if len(h.logs.Messages("delete messages; they will be redelivered and deleted then")) != 1 {
		t.Error("the failed delete call was not logged")
	}
}

type failingDeleteQueue struct{ *fakeQueue }

func (failingDeleteQueue) Delete(context.Context, ...string) error {
	return errors.New("connection reset")
}

func TestRunTwiceAtOnceIsRefused(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.eventually("Run to start", func() bool { return h.q.receiveCalls() > 0 })
	if err := h.p.Run(context.Background()); err == nil {
		t.Error("a second Run succeeded")
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	// Once stopped it may run again.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.p.Run(ctx); err != nil {
		t.Errorf("Run after stop = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	full := func() Deps {
		s := newFakeStore()
		return Deps{Queue: newFakeQueue(time.Second, 3), Store: s, Inventory: s, Fraud: NewRules(RulesConfig{}, s),
			Payment: NewSimulatedGateway(GatewayConfig{}, newFakeLedger(), nil)}
	}
	tests := []struct {
		name string
		cfg  Config
		deps func(Deps) Deps
	}{
		{"a batch size above 10 is refused", Config{BatchSize: 11}, nil},
		{"a negative concurrency is refused", Config{Concurrency: -1}, nil},
		{"a negative receivers count is refused", Config{Receivers: -1}, nil},
		{"a backoff max below its base is refused", Config{BackoffBase: time.Minute, BackoffMax: time.Second}, nil},
		{"a receive backoff max below its base is refused", Config{ReceiveBackoffBase: time.Minute, ReceiveBackoffMax: time.Second}, nil},
		{"a negative duration is refused", Config{StageTimeout: -time.Second}, nil},
		{"a missing payment is refused", Config{}, func(d Deps) Deps { d.Payment = nil; return d }},
		{"a missing queue is refused", Config{}, func(d Deps) Deps { d.Queue = nil; return d }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := full()
			if tt.deps != nil {
				d = tt.deps(d)
			}
			if _, err := New(tt.cfg, d); err == nil {
				t.Error("New succeeded")
			}
		})
	}
	t.Run("defaults fill a zero config", func(t *testing.T) {
		p, err := New(Config{}, full())
		if err != nil {
			t.Fatal(err)
		}
		c := p.cfg
		if c.Concurrency != 64 || c.BatchSize != 10 || c.Receivers != 4 ||
			c.BackoffBase != time.Second || c.BackoffMax != 30*time.Second ||
			c.DrainTimeout != 25*time.Second || c.WaitTime != time.Second {
			t.Errorf("defaults = %+v", c)
		}
		if err := p.learnPolicy(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := (orderflow.QueuePolicy{VisibilityTimeout: time.Second, MaxReceives: 3}); p.queuePolicy() != want {
			t.Errorf("policy = %+v, want the queue's %+v", p.queuePolicy(), want)
		}
	})
	t.Run("a batch larger than the concurrency shrinks to it", func(t *testing.T) {
		p, err := New(Config{Concurrency: 3}, full())
		if err != nil {
			t.Fatal(err)
		}
		if p.cfg.BatchSize != 3 || p.cfg.Receivers != 1 {
			t.Errorf("batch size %d, receivers %d; want 3 and 1", p.cfg.BatchSize, p.cfg.Receivers)
		}
	})
	t.Run("two processors share one registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		for i := range 2 {
			d := full()
			d.Registerer = reg
			if _, err := New(Config{Env: "test"}, d); err != nil {
				t.Fatalf("processor %d: %v", i+1, err)
			}
		}
	})
	t.Run("a metric name taken by another kind of collector is refused", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "orders_processed_total", Help: "x"}))
		d := full()
		d.Registerer = reg
		if _, err := New(Config{}, d); err == nil {
			t.Error("New succeeded")
		}
	})
}

// checkTransitionLogs checks that o's two transitions (PENDING→PROCESSING,
// PROCESSING→COMPLETED) were logged, each with the order, its user and
// the request that created it.
func checkTransitionLogs(t *testing.T, h *harness, o orderflow.Order) {
	t.Helper()
	lines := h.logs.Messages("order transition")
	if len(lines) != 2 {
		t.Fatalf("transition log lines = %d, want 2 (PENDING→PROCESSING, PROCESSING→COMPLETED)", len(lines))
	}
	for i, to := range []string{"PROCESSING", "COMPLETED"} {
		l := lines[i]
		if l["to"] != to || l["order_id"] != string(o.ID) || l["user_id"] != "u1" || l["request_id"] != o.RequestID {
			t.Errorf("line %d = %v, want to=%s with order_id, user_id and request_id", i, l, to)
		}
	}
}

func TestDeleteWindowEndsWellBeforeTheVisibilityTimeout(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.cfg.DeleteDelay = time.Hour })
	if got, want := h.p.deleteWindow(), h.q.vt/3; got != want {
		t.Errorf("delete window with a visibility timeout of %s = %s, want %s", h.q.vt, got, want)
	}
	h = newHarness(t, func(h *harness) { h.cfg.DeleteDelay = time.Millisecond })
	if got := h.p.deleteWindow(); got != time.Millisecond {
		t.Errorf("delete window = %s, want the 1ms configured", got)
	}
}
