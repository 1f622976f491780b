package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderflow/orderflow"
)

// Intake is an orderflow.Intake with the store and the queue it writes to,
// through which the intake suite checks what it stored and queued.
type Intake struct {
	Intake orderflow.Intake
	// Orders reads the orders Intake stored.
	Orders interface {
		GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error)
	}
	// Queue is the queue Intake sends to, empty at the start of the
	// subtest and not shared with another; the suite receives and deletes
	// its messages.
	Queue interface {
		Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error)
		Delete(ctx context.Context, receipts ...string) error
	}
}

// TestIntake runs the intake contract (orderflow.Intake) against the
// intakes newIntake makes, one per subtest. Subtests use fresh user ids and
// keys, so intakes may share a store; each needs a queue of its own.
func TestIntake(t *testing.T, newIntake func(t *testing.T) Intake) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, in Intake)
	}{
		{"a new order is stored PENDING and exactly one message for it is queued", acceptNew},
		{"the stored order is the order accepted, field for field", acceptStoresAsGiven},
		{"same key and same request returns the original order and queues nothing", acceptReplay},
		{"same key with another request is a mismatch and stores and queues nothing", acceptMismatch},
		{"different users use the same key independently", acceptOtherUser},
		{"without a key every call accepts a new order", acceptNoKey},
		{"an order that is not PENDING is invalid and queues nothing", acceptInvalid},
		{"concurrent accepts with one key accept one order and queue one message", acceptConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newIntake(t))
		})
	}
}

// accept calls Accept and fails t on an error.
func accept(t *testing.T, in Intake, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool) {
	t.Helper()
	got, created, err := in.Intake.Accept(testCtx(t), o, key)
	if err != nil {
		t.Fatalf("Accept(%s): %v", o.ID, err)
	}
	return got, created
}

// stored returns the order in in's store, and fails t if it cannot.
func stored(t *testing.T, in Intake, id orderflow.OrderID) orderflow.Order {
	t.Helper()
	o, err := in.Orders.GetOrder(testCtx(t), id)
	if err != nil {
		t.Fatalf("GetOrder(%s): %v", id, err)
	}
	return o
}

// queued receives (and deletes) every message in in's queue, until a
// receive with a wait finds none, and returns their messages.
func queued(t *testing.T, in Intake) []orderflow.Message {
	t.Helper()
	var msgs []orderflow.Message
	for {
		ds, err := in.Queue.Receive(testCtx(t), 10, time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(ds) == 0 {
			return msgs
		}
		for _, d := range ds {
			if d.Err != nil {
				t.Errorf("queued message %q does not decode: %v", d.Body, d.Err)
			}
			msgs = append(msgs, d.Message)
			if err := in.Queue.Delete(testCtx(t), d.Receipt); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
	}
}

// wantQueued checks that exactly the messages of orders are queued, one
// each, with the order's request id and traceparent.
func wantQueued(t *testing.T, in Intake, orders ...orderflow.Order) {
	t.Helper()
	want := map[orderflow.Message]int{}
	for _, o := range orders {
		want[orderflow.Message{OrderID: o.ID, RequestID: o.RequestID, TraceParent: o.TraceParent}]++
	}
	got := map[orderflow.Message]int{}
	for _, m := range queued(t, in) {
		got[m]++
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("queued messages, by count (-want +got):\n%s", d)
	}
}

func withKey(user string) orderflow.IdempotencyKey {
	return orderflow.IdempotencyKey{UserID: user, Key: unique("key"), RequestHash: "hash-1"}
}

func acceptNew(t *testing.T, in Intake) {
	o := newOrder(unique("user"), baseTime, 100)
	got, created := accept(t, in, o, withKey(o.UserID))
	if !created || got.ID != o.ID || got.Status != orderflow.StatusPending {
		t.Errorf("Accept of a new order: %s %s created=%v, want %s PENDING created", got.ID, got.Status, created, o.ID)
	}
	if got := stored(t, in, o.ID); got.Status != orderflow.StatusPending {
		t.Errorf("stored order is %s, want PENDING", got.Status)
	}
	wantQueued(t, in, o)
}

func acceptStoresAsGiven(t *testing.T, in Intake) {
	o := newOrder(unique("user"), baseTime, 12345)
	o.Currency = "EUR"
	got, _ := accept(t, in, o, withKey(o.UserID))
	diffOrder(t, "Accept result", got, o)
	diffOrder(t, "GetOrder", stored(t, in, o.ID), o)

	bare := newOrder(unique("user"), baseTime.Add(time.Second), 1)
	bare.Items, bare.RequestID, bare.TraceParent = nil, "", ""
	accept(t, in, bare, orderflow.IdempotencyKey{UserID: bare.UserID})
	if got := stored(t, in, bare.ID); len(got.Items) != 0 || got.RequestID != "" || got.TraceParent != "" || got.Failure != nil {
		t.Errorf("order without items or request id came back as %+v", got)
	}
	wantQueued(t, in, o, bare)
}

func acceptReplay(t *testing.T, in Intake) {
	user := unique("user")
	key := withKey(user)
	first := newOrder(user, baseTime, 100)
	accept(t, in, first, key)
	wantQueued(t, in, first)

	second := newOrder(user, baseTime.Add(time.Second), 100)
	got, created := accept(t, in, second, key)
	if created {
		t.Errorf("replay: created = true, want false")
	}
	diffOrder(t, "replay returns the original", got, first)
	if _, err := in.Orders.GetOrder(testCtx(t), second.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("replay stored a second order: GetOrder(%s) = %v, want not found", second.ID, err)
	}
	wantQueued(t, in)
}

func acceptMismatch(t *testing.T, in Intake) {
	user := unique("user")
	key := withKey(user)
	first := newOrder(user, baseTime, 100)
	accept(t, in, first, key)
	other := newOrder(user, baseTime.Add(time.Second), 200)
	key.RequestHash = "hash-2"
	_, _, err := in.Intake.Accept(testCtx(t), other, key)
	wantCode(t, "same key, other request", err, orderflow.EMismatch)
	if _, err := in.Orders.GetOrder(testCtx(t), other.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("mismatch stored the order: GetOrder = %v, want not found", err)
	}
	wantQueued(t, in, first)
}

func acceptOtherUser(t *testing.T, in Intake) {
	key := unique("key")
	a := newOrder(unique("alice"), baseTime, 100)
	b := newOrder(unique("bob"), baseTime.Add(time.Second), 100)
	accept(t, in, a, orderflow.IdempotencyKey{UserID: a.UserID, Key: key, RequestHash: "h"})
	got, created := accept(t, in, b, orderflow.IdempotencyKey{UserID: b.UserID, Key: key, RequestHash: "h"})
	if !created {
		t.Errorf("other user's order with the same key: created = false, want true")
	}
	diffOrder(t, "other user's order", got, b)
	wantQueued(t, in, a, b)
}

func acceptNoKey(t *testing.T, in Intake) {
	user := unique("user")
	var orders []orderflow.Order
	for i := range 2 {
		o := newOrder(user, baseTime.Add(time.Duration(i)*time.Second), 100)
		if _, created := accept(t, in, o, orderflow.IdempotencyKey{UserID: user}); !created {
			t.Errorf("order %d without a key: created = false", i)
		}
		orders = append(orders, o)
	}
	wantQueued(t, in, orders...)
}

func acceptInvalid(t *testing.T, in Intake) {
	o := newOrder(unique("user"), baseTime, 100)
	o.Status = orderflow.StatusProcessing
	_, _, err := in.Intake.Accept(testCtx(t), o, withKey(o.UserID))
	wantCode(t, "Accept of a PROCESSING order", err, orderflow.EInvalid)
	if _, err := in.Orders.GetOrder(testCtx(t), o.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("invalid order stored: GetOrder = %v, want not found", err)
	}
	wantQueued(t, in)
}

func acceptConcurrent(t *testing.T, in Intake) {
	user := unique("user")
	key := withKey(user)
	const n = 8
	orders := make([]orderflow.Order, n)
	for i := range orders {
		orders[i] = newOrder(user, baseTime.Add(time.Duration(i)*time.Second), 100)
	}
	type result struct {
		o       orderflow.Order
		created bool
		err     error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			r.o, r.created, r.err = in.Intake.Accept(testCtx(t), orders[i], key)
		})
	}
	wg.Wait()
	var winner *orderflow.Order
	for i, r := range results {
		if r.created && r.err == nil {
			if winner != nil {
				t.Fatalf("concurrent accepts with one key created %s and %s, want one order", winner.ID, r.o.ID)
			}
			winner = &orders[i]
		}
	}
	if winner == nil {
		t.Fatalf("no concurrent accept created the order: %+v", results)
	}
	for _, r := range results {
		switch {
		case r.err == nil && !r.created && r.o.ID != winner.ID:
			t.Errorf("a concurrent accept returned order %s, want the one accepted, %s", r.o.ID, winner.ID)
		case r.err != nil && orderflow.ErrorCode(r.err) != orderflow.EConflict:
			t.Errorf("a concurrent accept: %v, want the order or EConflict (in flight)", r.err)
		}
	}
	for _, o := range orders {
		if _, err := in.Orders.GetOrder(testCtx(t), o.ID); o.ID != winner.ID && orderflow.ErrorCode(err) != orderflow.ENotFound {
			t.Errorf("a losing concurrent accept stored its order %s: GetOrder = %v, want not found", o.ID, err)
		}
	}
	wantQueued(t, in, *winner)
}
