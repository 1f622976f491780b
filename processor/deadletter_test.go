package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/logtest"
	"github.com/orderflow/orderflow/sqlite"
)

// policyWorld is a processor on a real SQLite queue and store, for the
// dead-letter policy: the queue dead-letters after one receive, and bolt
// is stocked.
type policyWorld struct {
	t     *testing.T
	db    *sqlite.DB
	store *policyStore
	stock *policyStock
	pay   *policyPayment
	logs  *logtest.Buffer
	p     *Processor
}

// policyStore is the database as the processor's store, with a read that
// can fail, or return a stale copy of the order, and a status write that
// can fail, or lose the next conflicts writes to another worker (the
// order as it is, EConflict).
type policyStore struct {
	*sqlite.DB
	getErr    error
	stale     *orderflow.Order
	transErr  error
	conflicts int
}

func (s *policyStore) Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error) {
	switch {
	case s.transErr != nil:
		return orderflow.Order{}, s.transErr
	case s.conflicts > 0:
		s.conflicts--
		o, err := s.DB.GetOrder(ctx, t.ID)
		if err != nil {
			return o, err
		}
		return o, orderflow.Errorf(orderflow.EConflict, "order %s is %s", t.ID, o.Status)
	}
	return s.DB.Transition(ctx, t)
}

func (s *policyStore) GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	switch {
	case s.getErr != nil:
		return orderflow.Order{}, s.getErr
	case s.stale != nil:
		return *s.stale, nil
	}
	return s.DB.GetOrder(ctx, id)
}

// policyStock is the database as the stock port, failing the next
// releaseErrs releases.
type policyStock struct {
	*sqlite.DB
	releaseErrs int
}

func (s *policyStock) Release(ctx context.Context, id orderflow.OrderID) error {
	if s.releaseErrs > 0 {
		s.releaseErrs--
		return orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	}
	return s.DB.Release(ctx, id)
}

// policyPayment is the simulated gateway on the database's ledger, with a
// look-up that can fail.
type policyPayment struct {
	*SimulatedGateway
	chargedErr error
}

func (g *policyPayment) Charged(ctx context.Context, key string) (bool, error) {
	if g.chargedErr != nil {
		return false, g.chargedErr
	}
	return g.SimulatedGateway.Charged(ctx, key)
}

func newPolicyWorld(t *testing.T, interval time.Duration) *policyWorld {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "orderflow.db"), sqlite.Options{MaxReceives: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &policyWorld{
		t: t, db: db, logs: &logtest.Buffer{},
		store: &policyStore{DB: db}, stock: &policyStock{DB: db},
		pay: &policyPayment{SimulatedGateway: NewSimulatedGateway(GatewayConfig{Latency: -1}, db, time.Now)},
	}
	if err := db.SetStock(context.Background(), "bolt", 10); err != nil {
		t.Fatal(err)
	}
	w.p, err = New(Config{Env: "test", DeadLetterInterval: interval}, Deps{
		Queue: db, Store: w.store, Inventory: w.stock, Fraud: NewRules(RulesConfig{}, db), Payment: w.pay,
		DeadLetters: db,
		Logger:      slog.New(orderflow.LogHandler(slog.NewJSONHandler(w.logs, nil))),
		Registerer:  prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", w.logs.String())
		}
	})
	return w
}

// order accepts an order of user u1 for 3 bolts (queueing its message)
// and brings it to status: PROCESSING reserves its bolts, charged also
// records its payment in the gateway's ledger, and a final status is
// reached from PROCESSING with f.
func (w *policyWorld) order(status orderflow.Status, charged bool, f *orderflow.Failure) orderflow.Order {
	w.t.Helper()
	c := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orderflow.Order{ID: orderflow.NewOrderID(now), UserID: "u1", Amount: 1000, Currency: "USD",
		Items: []orderflow.Item{{SKU: "bolt", Quantity: 3}}, Status: orderflow.StatusPending,
		RequestID: "req-" + string(status), CreatedAt: now, UpdatedAt: now}
	if _, _, err := w.db.Accept(c, o, orderflow.IdempotencyKey{}); err != nil {
		w.t.Fatal(err)
	}
	move := func(from, to orderflow.Status, f *orderflow.Failure) {
		w.t.Helper()
		var err error
		if o, err = w.db.Transition(c, orderflow.Transition{ID: o.ID, From: from, To: to, Failure: f, At: now}); err != nil {
			w.t.Fatal(err)
		}
	}
	if status == orderflow.StatusPending {
		return o
	}
	move(orderflow.StatusPending, orderflow.StatusProcessing, nil)
	if fl, err := w.db.Reserve(c, o.ID, o.Items); fl != nil || err != nil {
		w.t.Fatalf("Reserve: %v %v", fl, err)
	}
	if charged {
		if _, _, err := w.db.RecordCharge(c, orderflow.Charge{ID: "ch_" + string(o.ID), IdempotencyKey: string(o.ID), OrderID: o.ID, Amount: o.Amount, Currency: o.Currency, At: now}); err != nil {
			w.t.Fatal(err)
		}
	}
	if status != orderflow.StatusProcessing {
		move(orderflow.StatusProcessing, status, f)
	}
	return o
}

func (w *policyWorld) get(id orderflow.OrderID) orderflow.Order {
	w.t.Helper()
	o, err := w.db.GetOrder(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

func (w *policyWorld) bolts() int {
	w.t.Helper()
	n, err := w.db.Stock(context.Background(), "bolt")
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *policyWorld) processed(status string) float64 {
	return testutil.ToFloat64(w.p.metrics.processed.WithLabelValues("test", status))
}

// deadLetterAll has the queue dead-letter every message: one receive each
// (the queue's MaxReceives), then the receive that moves them.
func (w *policyWorld) deadLetterAll() {
	w.t.Helper()
	c := context.Background()
	ds, err := w.db.Receive(c, 100, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range ds {
		if err := w.db.ChangeVisibility(c, d.Receipt, 0); err != nil {
			w.t.Fatal(err)
		}
	}
	if ds, err := w.db.Receive(c, 100, 0); err != nil || len(ds) != 0 {
		w.t.Fatalf("last receive = %d messages, %v; want all dead-lettered", len(ds), err)
	}
}

// requeue replaces the queued messages with msgs.
func (w *policyWorld) requeue(msgs ...orderflow.Message) {
	w.t.Helper()
	c := context.Background()
	ds, err := w.db.Receive(c, 100, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, d := range ds {
		if err := w.db.Delete(c, d.Receipt); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := w.db.Send(c, msgs...); err != nil {
		w.t.Fatal(err)
	}
}

// TestDeadLetteredOrdersAreEndedCountedAndLogged: with the embedded queue
// as its source, the watch ends the orders of the messages a receive
// dead-letters at once (its interval is an hour): the charged order
// COMPLETED with its stock kept, the other unfinished ones FAILED
// (dead_lettered) with their stock given back; a final order, an unknown
// order and a poison message are left alone. Each order ended is counted
// in orders_processed_total and gets its "order transition" line with
// request_id (the message's, else the order's), order_id and user_id; the
// poison message is not counted again (Run counts it on its first
// receive). The messages stay in the dead-letter queue.
func TestDeadLetteredOrdersAreEndedCountedAndLogged(t *testing.T) {
	w := newPolicyWorld(t, time.Hour)
	pending := w.order(orderflow.StatusPending, false, nil)
	processing := w.order(orderflow.StatusProcessing, false, nil)
	charged := w.order(orderflow.StatusProcessing, true, nil)
	completed := w.order(orderflow.StatusCompleted, true, nil)
	completed = w.get(completed.ID)
	w.requeue(
		orderflow.Message{OrderID: pending.ID, RequestID: pending.RequestID},
		orderflow.Message{OrderID: processing.ID, RequestID: "req-from-message"},
		orderflow.Message{OrderID: charged.ID}, // without a request id: the order's
		orderflow.Message{OrderID: completed.ID},
		orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}, // no such order
	)
	if err := w.db.SendRaw(context.Background(), []byte("poison")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- w.p.WatchDeadLetters(ctx) }()
	w.deadLetterAll()
	deadline := time.Now().Add(30 * time.Second) // a safety net: the watch is woken at once
	for w.processed(statusError) != 2 || w.processed(statusSuccess) != 1 || w.bolts() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("orders not ended within 30s: error %v, success %v, bolts %d", w.processed(statusError), w.processed(statusSuccess), w.bolts())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-watched; err != nil {
		t.Errorf("WatchDeadLetters after cancel: %v, want nil", err)
	}

	for _, o := range []orderflow.Order{pending, processing} {
		if got := w.get(o.ID); got.Status != orderflow.StatusFailed || got.Failure == nil || got.Failure.Code != orderflow.ReasonDeadLettered || got.Failure.Detail == "" {
			t.Errorf("order %s ended %s with failure %+v, want FAILED %s", o.RequestID, got.Status, got.Failure, orderflow.ReasonDeadLettered)
		}
	}
	if got := w.get(charged.ID); got.Status != orderflow.StatusCompleted || got.Failure != nil {
		t.Errorf("charged order ended %s with failure %+v, want COMPLETED", got.Status, got.Failure)
	}
	if got := w.get(completed.ID); got.Status != orderflow.StatusCompleted || !got.UpdatedAt.Equal(completed.UpdatedAt) {
		t.Errorf("completed order after the watch = %+v, want it unchanged", got)
	}
	if n := w.bolts(); n != 4 {
		t.Errorf("bolts = %d, want 4 (the FAILED order's 3 given back; the charged and the completed orders' 3 each kept)", n)
	}
	if n := w.processed(statusRejected); n != 0 {
		t.Errorf("rejected = %v, want 0", n)
	}
	if n := testutil.ToFloat64(w.p.metrics.poison); n != 0 {
		t.Errorf("poison count = %v, want 0 (counted on its first receive, not when dead)", n)
	}
	want := map[orderflow.OrderID]map[string]any{
		pending.ID:    {"from": "PENDING", "to": "FAILED", "reason": orderflow.ReasonDeadLettered, "request_id": pending.RequestID, "user_id": "u1"},
		processing.ID: {"from": "PROCESSING", "to": "FAILED", "reason": orderflow.ReasonDeadLettered, "request_id": "req-from-message", "user_id": "u1"},
		charged.ID:    {"from": "PROCESSING", "to": "COMPLETED", "request_id": charged.RequestID, "user_id": "u1"},
	}
	lines := w.logs.Messages("order transition")
	if len(lines) != len(want) {
		t.Errorf("got %d transition lines %v, want %d", len(lines), lines, len(want))
	}
	for _, l := range lines {
		for k, v := range want[orderflow.OrderID(fmt.Sprint(l["order_id"]))] {
			if l[k] != v {
				t.Errorf("transition line %v: %s = %v, want %v", l, k, l[k], v)
			}
		}
	}
	if d, err := w.db.Depth(context.Background()); err != nil || d.Dead != 6 {
		t.Errorf("depth = %+v, %v; want all 6 messages left dead", d, err)
	}
}

// TestDeadLetterWatchEndsOrdersLeftByACrash: messages dead-lettered while
// no watch ran (the processor died between the receive that dead-lettered
// and ending the order) have their orders ended by the next watch, at its
// start.
func TestDeadLetterWatchEndsOrdersLeftByACrash(t *testing.T) {
	w := newPolicyWorld(t, time.Hour)
	o := w.order(orderflow.StatusProcessing, false, nil)
	w.deadLetterAll()
	if got := w.get(o.ID); got.Status != orderflow.StatusProcessing {
		t.Fatalf("order after dead-lettering without a watch: %s, want PROCESSING", got.Status)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.p.WatchDeadLetters(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for w.processed(statusError) != 1 || w.bolts() != 10 {
		if time.Now().After(deadline) {
			t.Fatal("the order left by the crash was not ended within 30s")
		}
		time.Sleep(time.Millisecond)
	}
	if got := w.get(o.ID); got.Status != orderflow.StatusFailed || w.bolts() != 10 {
		t.Errorf("order %s, bolts %d; want FAILED and all 10 back", got.Status, w.bolts())
	}
}

// TestDeadLetterPolicy is the policy, one dead-lettered message at a time.
func TestDeadLetterPolicy(t *testing.T) {
	unavailable := orderflow.Unavailable(errors.New("timeout"), "unreachable")
	deadLettered := &orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: "dead"}
	tests := []struct {
		name string
		// order makes the order; nil: the message names no order.
		order   func(w *policyWorld) orderflow.Order
		poison  bool
		setup   func(w *policyWorld, o orderflow.Order)
		wantErr bool
		want    orderflow.Status // "" when there is no order
		reason  string           // of the failure, "" for none
		bolts   int
		counted string // the orders_processed_total status counted, if any
		// retried and retriedBolts are the order and the stock once the
		// handle that failed is tried again with the dependency back.
		retried      orderflow.Status
		retriedBolts int
	}{
		{
			name:  "a PENDING order is FAILED dead_lettered",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusPending, false, nil) },
			want:  orderflow.StatusFailed, reason: orderflow.ReasonDeadLettered, bolts: 10, counted: statusError,
		},
		{
			name:  "a PROCESSING order the gateway holds a payment for is COMPLETED, its stock kept",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, true, nil) },
			want:  orderflow.StatusCompleted, bolts: 7, counted: statusSuccess,
		},
		{
			name:  "a PROCESSING order without a payment is FAILED dead_lettered, its stock given back",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, false, nil) },
			want:  orderflow.StatusFailed, reason: orderflow.ReasonDeadLettered, bolts: 10, counted: statusError,
		},
		{
			name:  "an order FAILED dead_lettered before its stock was given back gets it back, without a second transition",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusFailed, false, deadLettered) },
			want:  orderflow.StatusFailed, reason: orderflow.ReasonDeadLettered, bolts: 10,
		},
		{
			name: "an order FAILED for another reason stays so, its stock released",
			order: func(w *policyWorld) orderflow.Order {
				return w.order(orderflow.StatusFailed, false, &orderflow.Failure{Code: orderflow.ReasonProcessingFailed, Detail: "x"})
			},
			want: orderflow.StatusFailed, reason: orderflow.ReasonProcessingFailed, bolts: 10,
		},
		{
			name:  "a COMPLETED order is left alone",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusCompleted, true, nil) },
			want:  orderflow.StatusCompleted, bolts: 7,
		},
		{
			name: "a REJECTED order stays so, its stock released",
			order: func(w *policyWorld) orderflow.Order {
				return w.order(orderflow.StatusRejected, false, &orderflow.Failure{Code: orderflow.ReasonFraudSuspected, Detail: "x"})
			},
			want: orderflow.StatusRejected, reason: orderflow.ReasonFraudSuspected, bolts: 10,
		},
		{
			name:  "an order that does not exist is left alone",
			order: nil, bolts: 10,
		},
		{
			name:   "a poison message is left alone",
			poison: true, bolts: 10,
		},
		{
			name:    "a payment that cannot be looked up: retried later, the order unchanged",
			order:   func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, true, nil) },
			setup:   func(w *policyWorld, _ orderflow.Order) { w.pay.chargedErr = unavailable },
			wantErr: true, want: orderflow.StatusProcessing, bolts: 7,
			retried: orderflow.StatusCompleted, retriedBolts: 7,
		},
		{
			name:    "an order that cannot be read: retried later",
			order:   func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusPending, false, nil) },
			setup:   func(w *policyWorld, _ orderflow.Order) { w.store.getErr = unavailable },
			wantErr: true, want: orderflow.StatusPending, bolts: 10,
			retried: orderflow.StatusFailed, retriedBolts: 10,
		},
		{
			name:    "stock that cannot be given back: retried later, the order FAILED",
			order:   func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, false, nil) },
			setup:   func(w *policyWorld, _ orderflow.Order) { w.stock.releaseErrs = 1 },
			wantErr: true, want: orderflow.StatusFailed, reason: orderflow.ReasonDeadLettered, bolts: 7, counted: statusError,
			retried: orderflow.StatusFailed, retriedBolts: 10,
		},
		{
			name:    "a status that cannot be written: retried later, the order unchanged",
			order:   func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, false, nil) },
			setup:   func(w *policyWorld, _ orderflow.Order) { w.store.transErr = unavailable },
			wantErr: true, want: orderflow.StatusProcessing, bolts: 7,
			retried: orderflow.StatusFailed, retriedBolts: 10,
		},
		{
			name:    "an order that keeps moving while it is decided: retried later",
			order:   func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusPending, false, nil) },
			setup:   func(w *policyWorld, _ orderflow.Order) { w.store.conflicts = deadLetterRounds },
			wantErr: true, want: orderflow.StatusPending, bolts: 10,
			retried: orderflow.StatusFailed, retriedBolts: 10,
		},
		{
			name:  "an order that moved on since it was read is decided on what it is now",
			order: func(w *policyWorld) orderflow.Order { return w.order(orderflow.StatusProcessing, true, nil) },
			setup: func(w *policyWorld, o orderflow.Order) {
				stale := o
				stale.Status = orderflow.StatusPending
				w.store.stale = &stale
			},
			want: orderflow.StatusCompleted, bolts: 7, counted: statusSuccess,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newPolicyWorld(t, time.Hour)
			d := orderflow.Delivery{MessageID: "1", ReceiveCount: 5}
			var o orderflow.Order
			switch {
			case tt.poison:
				d.Body = []byte("poison")
				_, d.Err = orderflow.DecodeMessage(d.Body)
			case tt.order == nil:
				d.Message = orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}
			default:
				o = tt.order(w)
				d.Message = orderflow.Message{OrderID: o.ID, RequestID: o.RequestID}
			}
			if tt.setup != nil {
				tt.setup(w, o)
			}
			before := ""
			if o.ID != "" {
				before = string(w.get(o.ID).Status)
			}

			err := w.p.endDeadLettered(context.Background(), d)
			if (err != nil) != tt.wantErr {
				t.Errorf("endDeadLettered: %v, want error %v", err, tt.wantErr)
			}
			if o.ID != "" {
				got := w.get(o.ID)
				reason := ""
				if got.Failure != nil {
					reason = got.Failure.Code
				}
				if got.Status != tt.want || reason != tt.reason {
					t.Errorf("order %s → %s (%s), want %s (%s)", before, got.Status, reason, tt.want, tt.reason)
				}
			}
			if n := w.bolts(); n != tt.bolts {
				t.Errorf("bolts = %d, want %d", n, tt.bolts)
			}
			for _, s := range []string{statusSuccess, statusRejected, statusError} {
				want := 0.0
				if s == tt.counted {
					want = 1
				}
				if n := w.processed(s); n != want {
					t.Errorf("orders_processed_total{status=%q} = %v, want %v", s, n, want)
				}
			}
			if n, want := len(w.logs.Messages("order transition")), map[bool]int{true: 1}[tt.counted != ""]; n != want {
				t.Errorf("%d transition lines, want %d", n, want)
			}
			if !tt.wantErr {
				return
			}
			// Tried again, once the dependency is back, it finishes the job
			// and counts the order once.
			w.pay.chargedErr, w.store.getErr, w.store.transErr, w.store.conflicts = nil, nil, nil, 0
			if err := w.p.endDeadLettered(context.Background(), d); err != nil {
				t.Errorf("endDeadLettered again: %v", err)
			}
			if got := w.get(o.ID); got.Status != tt.retried || w.bolts() != tt.retriedBolts {
				t.Errorf("after the retry: order %s, bolts %d; want %s, %d", got.Status, w.bolts(), tt.retried, tt.retriedBolts)
			}
			if n := w.processed(statusSuccess) + w.processed(statusError); n != 1 {
				t.Errorf("after the retry: %v orders counted, want 1", n)
			}
		})
	}
}

// TestDeadLetterWatchSettings: without a source the watch waits for its
// context; a negative interval is refused.
func TestDeadLetterWatchSettings(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "orderflow.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	deps := Deps{Queue: db, Store: db, Inventory: db, Fraud: NewRules(RulesConfig{}, db), Payment: NewSimulatedGateway(GatewayConfig{}, db, nil)}
	p, err := New(Config{}, deps)
	if err != nil {
		t.Fatal(err)
	}
	const wait = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := p.WatchDeadLetters(ctx); err != nil || time.Since(start) < wait {
		t.Errorf("WatchDeadLetters without a source returned %v after %v, want nil once its context ended (%v)", err, time.Since(start), wait)
	}
	if _, err := New(Config{DeadLetterInterval: -time.Second}, deps); err == nil {
		t.Error("New with a negative dead-letter interval: nil error, want it refused")
	}
}
