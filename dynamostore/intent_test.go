package dynamostore_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
)

func pendingOrder(user string, at time.Time) orderflow.Order {
	at = at.UTC().Truncate(time.Millisecond)
	return orderflow.Order{ID: orderflow.NewOrderID(at), UserID: user, Amount: 100, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: at, UpdatedAt: at}
}

func TestBeginOrder(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	c := awstest.NewClock()
	st := dynamostore.New(client, table, dynamostore.Options{StaleIntent: 10 * time.Second, Now: c.Now})
	ctx := testCtx(t)
	key := orderflow.IdempotencyKey{UserID: "ann", Key: "k1", RequestHash: "h"}

	first := pendingOrder("ann", c.Now())
	b, err := st.BeginOrder(ctx, first, key)
	if err != nil || !b.Created || !b.NeedsMessage() || b.Order.ID != first.ID {
		t.Fatalf("first BeginOrder: %+v, %v; want created", b, err)
	}
	if _, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), key); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("while the first is in flight: got %v, want EConflict", err)
	}
	c.Advance(11 * time.Second)
	taken, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), key)
	if err != nil || !taken.Resumed || taken.Order.ID != first.ID {
		t.Fatalf("after the stale time: %+v, %v; want the first order resumed", taken, err)
	}
	// The first request, back from the dead, no longer owns the key: its
	// FinishOrder is a no-op and the key stays pending for the new owner.
	if err := st.FinishOrder(ctx, key, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), key); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("after the old owner's finish: got %v, want EConflict (still in flight)", err)
	}
	if err := st.FinishOrder(ctx, key, taken); err != nil {
		t.Fatal(err)
	}
	replay, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), key)
	if err != nil || replay.NeedsMessage() || replay.Order.ID != first.ID {
		t.Errorf("after finish: %+v, %v; want a replay of the first order", replay, err)
	}
	if _, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), orderflow.IdempotencyKey{UserID: "ann", Key: "k1", RequestHash: "other"}); orderflow.ErrorCode(err) != orderflow.EMismatch {
		t.Errorf("other hash: got %v, want EMismatch", err)
	}

	// Abandon makes the key stale at once.
	k2 := orderflow.IdempotencyKey{UserID: "ann", Key: "k2", RequestHash: "h"}
	b2, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), k2)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AbandonOrder(ctx, k2, b2); err != nil {
		t.Fatal(err)
	}
	if again, err := st.BeginOrder(ctx, pendingOrder("ann", c.Now()), k2); err != nil || !again.Resumed || again.Order.ID != b2.Order.ID {
		t.Errorf("after abandon: %+v, %v; want resumed at once", again, err)
	}

	// The same order id twice is a conflict, with or without a key.
	dup := pendingOrder("ann", c.Now())
	if _, err := st.BeginOrder(ctx, dup, orderflow.IdempotencyKey{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.BeginOrder(ctx, dup, orderflow.IdempotencyKey{}); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("same id again: got %v, want EConflict", err)
	}
	if _, err := st.BeginOrder(ctx, dup, orderflow.IdempotencyKey{UserID: "ann", Key: "k3", RequestHash: "h"}); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("same id again with a key: got %v, want EConflict", err)
	}
	bad := dup
	bad.Status = orderflow.StatusCompleted
	if _, err := st.BeginOrder(ctx, bad, orderflow.IdempotencyKey{}); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("a new order not PENDING: got %v, want EInvalid", err)
	}
}

func TestSweepPendingAndStartOrder(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	c := awstest.NewClock()
	st := dynamostore.New(client, table, dynamostore.Options{Now: c.Now})
	ctx := testCtx(t)
	old, started := pendingOrder("bo", c.Now()), pendingOrder("bo", c.Now().Add(time.Millisecond))
	for _, o := range []orderflow.Order{old, started} {
		if _, err := st.BeginOrder(ctx, o, orderflow.IdempotencyKey{}); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := st.StartOrder(ctx, started.ID, c.Now()); err != nil || o.Status != orderflow.StatusProcessing {
		t.Fatalf("StartOrder: %+v, %v", o, err)
	}
	if o, err := st.StartOrder(ctx, started.ID, c.Now()); orderflow.ErrorCode(err) != orderflow.EConflict || o.Status != orderflow.StatusProcessing {
		t.Errorf("StartOrder again: %+v, %v; want the PROCESSING order and EConflict", o, err)
	}
	if _, err := st.StartOrder(ctx, orderflow.NewOrderID(c.Now()), c.Now()); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("StartOrder of an unknown order: %v, want ENotFound", err)
	}
	if got, err := st.SweepPending(ctx, c.Now().Add(-time.Minute), 10); err != nil || len(got) != 0 {
		t.Errorf("sweep before anything is old: %v, %v; want none", got, err)
	}
	c.Advance(time.Hour)
	got, err := st.SweepPending(ctx, c.Now().Add(-time.Minute), 10)
	if err != nil || len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("sweep: %v, %v; want only the old PENDING order %s", got, err, old.ID)
	}
	if got, err := st.SweepPending(ctx, c.Now().Add(-time.Minute), 10); err != nil || len(got) != 0 {
		t.Errorf("sweep right after: %v, %v; want none (claimed for a period)", got, err)
	}
}

func TestChargesLedger(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	st := dynamostore.New(client, table, dynamostore.Options{})
	ctx := testCtx(t)
	id := orderflow.NewOrderID(time.Now())
	c := orderflow.Charge{ID: "ch_1", IdempotencyKey: string(id), OrderID: id, Amount: 500, Currency: "USD"}
	first, dup, err := st.RecordCharge(ctx, c)
	if err != nil || dup {
		t.Fatalf("RecordCharge: %+v dup=%v %v", first, dup, err)
	}
	again, dup, err := st.RecordCharge(ctx, orderflow.Charge{ID: "ch_2", IdempotencyKey: string(id), OrderID: id, Amount: 500, Currency: "USD"})
	if err != nil || !dup || again.ID != "ch_1" {
		t.Errorf("same key again: %+v dup=%v %v; want the first charge as a duplicate", again, dup, err)
	}
	if _, _, err := st.RecordCharge(ctx, orderflow.Charge{OrderID: id}); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("charge without key: %v, want EInvalid", err)
	}
	if _, _, err := st.RecordCharge(ctx, orderflow.Charge{ID: "ch_3", IdempotencyKey: "other-key", OrderID: id, Amount: 1, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	list, err := st.Charges(ctx, id)
	if err != nil || len(list) != 2 {
		t.Errorf("Charges: %+v, %v; want 2", list, err)
	}
	if list, err := st.Charges(ctx, orderflow.NewOrderID(time.Now())); err != nil || len(list) != 0 {
		t.Errorf("Charges of an order without any: %+v, %v", list, err)
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	if err := dynamostore.CreateTable(testCtx(t), client, table); err != nil {
		t.Errorf("second CreateTable: %v", err)
	}
}

// TestUnreachable: with nothing listening, every call fails fast with
// EUnavailable, the code that makes the api answer 503.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := awstest.Config("http://" + addr)
	cfg.RetryMaxAttempts = 1
	st := dynamostore.New(dynamodb.NewFromConfig(cfg), "nope", dynamostore.Options{CallTimeout: time.Second})
	ctx := context.Background()
	id := orderflow.NewOrderID(time.Now())
	calls := map[string]error{
		"Ping":  st.Ping(ctx),
		"Stock": func() error { _, err := st.Stock(ctx, "x"); return err }(),
		"Get":   func() error { _, err := st.GetOrder(ctx, id); return err }(),
		"Begin": func() error {
			_, err := st.BeginOrder(ctx, pendingOrder("u", time.Now()), orderflow.IdempotencyKey{UserID: "u", Key: "k", RequestHash: "h"})
			return err
		}(),
		"List":    func() error { _, err := st.ListOrders(ctx, "u", "", 5); return err }(),
		"Reserve": func() error { _, err := st.Reserve(ctx, id, []orderflow.Item{{SKU: "a", Quantity: 1}}); return err }(),
		"Release": st.Release(ctx, id),
	}
	for name, err := range calls {
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("%s: got %v, want EUnavailable", name, err)
		}
	}
}
