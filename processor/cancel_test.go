package processor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
)

// holdPoint holds an order in a stage until the test lets it go: entered
// is signalled once the stage is reached, release lets it continue.
type holdPoint struct {
	entered chan struct{}
	release chan struct{}
}

func newHoldPoint() *holdPoint {
	return &holdPoint{entered: make(chan struct{}, 10), release: make(chan struct{})}
}

func (h *holdPoint) wait(ctx context.Context) error {
	h.entered <- struct{}{}
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heldFraud holds each order in the fraud check (after the reservation,
// before the payment).
type heldFraud struct {
	Fraud
	hold *holdPoint
}

func (f heldFraud) Check(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	if err := f.hold.wait(ctx); err != nil {
		return nil, err
	}
	return f.Fraud.Check(ctx, o)
}

// paidThenHeld charges, then holds the order before it is recorded
// COMPLETED: the charge went through before the processor saw a cancel.
type paidThenHeld struct {
	Payment
	hold *holdPoint
}

func (p paidThenHeld) Charge(ctx context.Context, req ChargeRequest) (orderflow.Charge, error) {
	c, err := p.Payment.Charge(ctx, req)
	if err != nil {
		return c, err
	}
	return c, p.hold.wait(ctx)
}

// cancelRig is a rig whose processor's fraud check or payment can hold an
// order, so that a cancel lands at a chosen stage boundary.
func (r *rig) withHold(fraud, pay bool) *holdPoint {
	r.t.Helper()
	h := newHoldPoint()
	db, wq := r.db, r.db.WorkQueue()
	var f Fraud = NewRules(RulesConfig{}, db)
	var p Payment = NewSimulatedGateway(GatewayConfig{Latency: time.Millisecond}, db, time.Now)
	if fraud {
		f = heldFraud{f, h}
	}
	if pay {
		p = paidThenHeld{p, h}
	}
	proc, err := New(Config{
		Env: "test", Concurrency: 8, WaitTime: 5 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond, DeleteDelay: time.Millisecond,
	}, Deps{
		Queue: wq, Store: wq, Inventory: db, Fraud: f, Payment: p,
		Logger: slog.New(orderflow.LogHandler(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.p = proc
	return h
}

func (r *rig) requestCancel(id orderflow.OrderID) orderflow.Order {
	r.t.Helper()
	o, err := r.db.RequestCancel(context.Background(), id, "u1", time.Now())
	if err != nil {
		r.t.Fatalf("RequestCancel: %v", err)
	}
	return o
}

// refundOf is the ledger's refund of id: the one recorded already, or
// else a new one under the id re_probe.
func (r *rig) refundOf(id orderflow.OrderID) orderflow.Refund {
	r.t.Helper()
	ref, err := r.db.RecordRefund(context.Background(), orderflow.Refund{ID: "re_probe", IdempotencyKey: string(id), OrderID: id})
	if err != nil {
		r.t.Fatal(err)
	}
	return ref
}

func (r *rig) cancelledCount() float64 {
	return testutil.ToFloat64(r.p.metrics.processed.WithLabelValues("test", statusCancelled))
}

func waitEntered(t *testing.T, h *holdPoint) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the order never reached the held stage")
	}
}

func wantCancelled(t *testing.T, r *rig, id orderflow.OrderID, refunded bool) {
	t.Helper()
	got := r.order(id)
	if got.Status != orderflow.StatusCancelled || got.Cancellation == nil || got.Cancellation.RequestedBy != "u1" {
		t.Fatalf("order = %s with cancellation %+v, want CANCELLED as requested by u1", got.Status, got.Cancellation)
	}
	if refunded != (got.Cancellation.RefundID != "") {
		t.Errorf("refund id %q; want refunded=%v", got.Cancellation.RefundID, refunded)
	}
	if n := r.stock("widget"); n != 100 {
		t.Errorf("widget stock = %d, want 100 (released)", n)
	}
}

func TestOnSQLiteAPendingOrderCancelledIsDroppedWithNoStage(t *testing.T) {
	r := newRig(t)
	o := r.accept(1000, items("widget", 2)...)
	if got := r.requestCancel(o.ID); got.Status != orderflow.StatusCancelled {
		t.Fatalf("cancel of a PENDING order: %s, want CANCELLED at once", got.Status)
	}
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	wantCancelled(t, r, o.ID, false)
	if n := r.charges(o.ID); n != 0 {
		t.Errorf("charges = %d, want none", n)
	}
	if lines := r.logs.Messages("order transition"); len(lines) != 0 {
		t.Errorf("transitions = %v, want none (the message is dropped)", lines)
	}
	if n := r.cancelledCount(); n != 0 {
		t.Errorf("processor counted %v cancelled orders, want 0 (the api ended it)", n)
	}
}

func TestOnSQLiteACancelBeforeTheReservationEndsTheOrderUntouched(t *testing.T) {
	r := newRig(t)
	o := r.accept(1000, items("widget", 2)...)
	// An attempt started the order and died; the owner cancelled it.
	if _, err := r.db.StartOrder(context.Background(), o.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.requestCancel(o.ID)
	r.start()
	r.waitQueue(orderflow.QueueDepth{})
	wantCancelled(t, r, o.ID, false)
	if n := r.charges(o.ID); n != 0 {
		t.Errorf("charges = %d, want none", n)
	}
	if n := r.cancelledCount(); n != 1 {
		t.Errorf("orders_processed_total{status=cancelled} = %v, want 1", n)
	}
}

func TestOnSQLiteACancelBeforeTheChargeReleasesTheStockAndChargesNothing(t *testing.T) {
	r := newRig(t)
	h := r.withHold(true, false)
	o := r.accept(1000, items("widget", 2)...)
	r.start()
	waitEntered(t, h)
	if n := r.stock("widget"); n != 98 {
		t.Fatalf("widget stock = %d in the fraud check, want 98 (reserved)", n)
	}
	if got := r.requestCancel(o.ID); got.Status != orderflow.StatusProcessing || got.Cancellation == nil {
		t.Fatalf("cancel in work: %s %+v, want PROCESSING with the request", got.Status, got.Cancellation)
	}
	close(h.release)
	r.waitQueue(orderflow.QueueDepth{})
	wantCancelled(t, r, o.ID, false)
	if n := r.charges(o.ID); n != 0 {
		t.Errorf("charges = %d, want none", n)
	}
	if n := r.cancelledCount(); n != 1 {
		t.Errorf("orders_processed_total{status=cancelled} = %v, want 1", n)
	}
}

func TestOnSQLiteACancelAfterTheChargeRefundsIt(t *testing.T) {
	r := newRig(t)
	h := r.withHold(false, true)
	o := r.accept(1000, items("widget", 2)...)
	r.start()
	waitEntered(t, h)
	if n := r.charges(o.ID); n != 1 {
		t.Fatalf("charges = %d while held, want 1", n)
	}
	r.requestCancel(o.ID)
	close(h.release)
	r.waitQueue(orderflow.QueueDepth{})
	wantCancelled(t, r, o.ID, true)
	ref := r.refundOf(o.ID)
	if !ref.Refunded() || ref.Amount != 1000 || ref.ID != r.order(o.ID).Cancellation.RefundID {
		t.Errorf("ledger refund = %+v, want the 1000 charged, under the order's refund id", ref)
	}
	if n := r.cancelledCount(); n != 1 {
		t.Errorf("orders_processed_total{status=cancelled} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(r.p.metrics.success); n != 0 {
		t.Errorf("orders_processed_total{status=success} = %v, want 0", n)
	}
}

func TestOnSQLiteTheDeadLetterWatchCancelsAnOrderWithACancelRequested(t *testing.T) {
	r := newRig(t)
	o := r.accept(1000, items("widget", 2)...)
	ctx := context.Background()
	// An attempt reserved, charged and died; the owner cancelled.
	if _, err := r.db.StartOrder(ctx, o.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if f, err := r.db.Reserve(ctx, o.ID, o.Items); err != nil || f != nil {
		t.Fatal(f, err)
	}
	if _, _, err := r.db.RecordCharge(ctx, orderflow.Charge{ID: "ch_1", IdempotencyKey: string(o.ID), OrderID: o.ID, Amount: 1000, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	r.requestCancel(o.ID)
	if err := r.p.endDeadLettered(ctx, orderflow.Delivery{Message: orderflow.Message{OrderID: o.ID}, ReceiveCount: testMaxReceives}); err != nil {
		t.Fatal(err)
	}
	wantCancelled(t, r, o.ID, true)
}

// endedElsewhere ends o as another worker does (its stock released,
// then the order moved), but with the release run before this attempt's
// reservation, which it therefore did not give back.
func (r *rig) endedElsewhere(o orderflow.Order) {
	r.t.Helper()
	r.requestCancel(o.ID)
	t := orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCancelled, At: time.Now()}
	if _, err := r.db.Transition(context.Background(), t); err != nil {
		r.t.Fatal(err)
	}
}

// An attempt that reserved after another worker's release, and finds the
// order ended at its next stage boundary, gives the stock back.
func TestOnSQLiteAnAttemptThatFindsItsOrderEndedElsewhereReleasesItsStock(t *testing.T) {
	r := newRig(t)
	h := r.withHold(true, false)
	o := r.accept(1000, items("widget", 2)...)
	r.start()
	waitEntered(t, h)
	r.endedElsewhere(o)
	close(h.release)
	r.waitQueue(orderflow.QueueDepth{})
	if n := r.stock("widget"); n != 100 {
		t.Errorf("widget stock = %d, want 100: the order ended CANCELLED, so nothing stays reserved", n)
	}
	if n := r.charges(o.ID); n != 0 {
		t.Errorf("charges = %d, want none", n)
	}
}

// An attempt that charged after the dead-letter watch found no payment
// and failed the order refunds the charge and gives the stock back.
func TestOnSQLiteAnAttemptThatChargedAnOrderFailedElsewhereRefundsIt(t *testing.T) {
	r := newRig(t)
	h := r.withHold(false, true)
	o := r.accept(1000, items("widget", 2)...)
	r.start()
	waitEntered(t, h)
	f := orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: "failed by the watch"}
	if _, err := r.db.Transition(context.Background(), orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusFailed, Failure: &f, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	r.waitQueue(orderflow.QueueDepth{})
	if got := r.order(o.ID).Status; got != orderflow.StatusFailed {
		t.Errorf("order %s, want it left FAILED", got)
	}
	if ref := r.refundOf(o.ID); !ref.Refunded() || ref.Amount != 1000 || ref.ID == "re_probe" {
		t.Errorf("ledger refund = %+v, want the 1000 charged given back by the processor", ref)
	}
	if lines := r.logs.Messages("payment refunded: the order was ended elsewhere while an attempt charged it"); len(lines) != 1 {
		t.Errorf("refund warnings = %v, want one", lines)
	}
	if n := r.stock("widget"); n != 100 {
		t.Errorf("widget stock = %d, want 100 (released)", n)
	}
}

// The same when the attempt that reserved died: the redelivered message,
// and the dead-letter watch, find the order ended and release its stock.
func TestOnSQLiteAnEndedOrderStillHoldingStockIsReleased(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(r *rig, o orderflow.Order)
	}{
		{"by the message's next receive", func(r *rig, _ orderflow.Order) {
			r.start()
			r.waitQueue(orderflow.QueueDepth{})
		}},
		{"by the dead-letter watch", func(r *rig, o orderflow.Order) {
			d := orderflow.Delivery{Message: orderflow.Message{OrderID: o.ID}, ReceiveCount: testMaxReceives}
			if err := r.p.endDeadLettered(context.Background(), d); err != nil {
				r.t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			o := r.accept(1000, items("widget", 2)...)
			ctx := context.Background()
			if _, err := r.db.StartOrder(ctx, o.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if f, err := r.db.Reserve(ctx, o.ID, o.Items); err != nil || f != nil {
				t.Fatal(f, err)
			}
			r.endedElsewhere(o)
			tt.end(r, o)
			if n := r.stock("widget"); n != 100 {
				t.Errorf("widget stock = %d, want 100 (released)", n)
			}
			if got := r.order(o.ID).Status; got != orderflow.StatusCancelled {
				t.Errorf("order %s, want it left CANCELLED", got)
			}
		})
	}
}
