package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// Ledger is the simulated payment gateway's database as the contract
// suite sees it (processor.Ledger; the sqlite and dynamostore stores
// implement it).
type Ledger interface {
	RecordCharge(ctx context.Context, c orderflow.Charge) (stored orderflow.Charge, duplicate bool, err error)
	LookupCharge(ctx context.Context, key string) (orderflow.Charge, bool, error)
	CountAttempt(ctx context.Context, key string) (int, error)
	RecordRefund(ctx context.Context, r orderflow.Refund) (orderflow.Refund, error)
}

// TestLedger runs the ledger contract against the ledgers newLedger makes.
// Subtests use fresh idempotency keys, so ledgers may share a backing
// database.
func TestLedger(t *testing.T, newLedger func(t *testing.T) Ledger) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, l Ledger)
	}{
		{"a charge is recorded once per idempotency key and looked up by it", chargeOnce},
		{"attempts are counted from 1 per idempotency key", countAttempts},
		{"concurrent attempts each get their own number", concurrentAttempts},
		{"a charge or an attempt needs an idempotency key", ledgerInvalid},
		{"a refund gives back the key's charge once", refundOnce},
		{"a refund before any charge voids the key", refundVoids},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newLedger(t))
		})
	}
}

func chargeOnce(t *testing.T, l Ledger) {
	key := unique("key")
	if _, ok, err := l.LookupCharge(testCtx(t), key); err != nil || ok {
		t.Fatalf("LookupCharge before any charge: found=%v, %v; want none", ok, err)
	}
	c := orderflow.Charge{ID: unique("ch"), IdempotencyKey: key, OrderID: orderflow.NewOrderID(baseTime), Amount: 1250, Currency: "EUR", At: baseTime}
	first, dup, err := l.RecordCharge(testCtx(t), c)
	if err != nil || dup {
		t.Fatalf("first RecordCharge: duplicate=%v, %v; want recorded", dup, err)
	}
	again, dup, err := l.RecordCharge(testCtx(t), orderflow.Charge{ID: unique("ch"), IdempotencyKey: key, OrderID: c.OrderID, Amount: 1250, Currency: "EUR", At: baseTime.Add(time.Second)})
	if err != nil || !dup || again.ID != first.ID {
		t.Errorf("second RecordCharge with the key: %+v duplicate=%v, %v; want the first charge %s as a duplicate", again, dup, err, first.ID)
	}
	got, ok, err := l.LookupCharge(testCtx(t), key)
	if err != nil || !ok || got.ID != c.ID || got.OrderID != c.OrderID || got.Amount != c.Amount || got.Currency != c.Currency || !got.At.Equal(baseTime.Truncate(time.Millisecond)) {
		t.Errorf("LookupCharge = %+v, %v, %v; want %+v (to the millisecond)", got, ok, err, c)
	}
}

func countAttempts(t *testing.T, l Ledger) {
	key, other := unique("key"), unique("key")
	for want := 1; want <= 3; want++ {
		if n, err := l.CountAttempt(testCtx(t), key); err != nil || n != want {
			t.Fatalf("CountAttempt #%d = %d, %v; want %d", want, n, err, want)
		}
	}
	if n, err := l.CountAttempt(testCtx(t), other); err != nil || n != 1 {
		t.Errorf("CountAttempt of another key = %d, %v; want 1 (counted apart)", n, err)
	}
	// A charge under the key does not disturb its count, nor the count it.
	if _, _, err := l.RecordCharge(testCtx(t), orderflow.Charge{ID: unique("ch"), IdempotencyKey: key, OrderID: orderflow.NewOrderID(baseTime), Amount: 1, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.CountAttempt(testCtx(t), key); err != nil || n != 4 {
		t.Errorf("CountAttempt after a charge = %d, %v; want 4", n, err)
	}
	if c, ok, err := l.LookupCharge(testCtx(t), key); err != nil || !ok || c.Amount != 1 {
		t.Errorf("LookupCharge after counting = %+v, %v, %v; want the charge", c, ok, err)
	}
}

func concurrentAttempts(t *testing.T, l Ledger) {
	key := unique("key")
	const n = 16
	got := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = l.CountAttempt(testCtx(t), key) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent CountAttempt: %v", err)
		}
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("concurrent CountAttempt returned %v, want each of 1..%d once", got, n)
		}
	}
}

func ledgerInvalid(t *testing.T, l Ledger) {
	_, err := l.CountAttempt(testCtx(t), "")
	wantCode(t, "CountAttempt without a key", err, orderflow.EInvalid)
	_, _, err = l.RecordCharge(testCtx(t), orderflow.Charge{ID: unique("ch"), Amount: 1, Currency: "USD"})
	wantCode(t, "RecordCharge without a key", err, orderflow.EInvalid)
}

func refundOnce(t *testing.T, l Ledger) {
	key := unique("key")
	id := orderflow.NewOrderID(baseTime)
	c, _, err := l.RecordCharge(testCtx(t), orderflow.Charge{ID: unique("ch"), IdempotencyKey: key, OrderID: id, Amount: 990, Currency: "USD", At: baseTime})
	if err != nil {
		t.Fatalf("RecordCharge: %v", err)
	}
	first, err := l.RecordRefund(testCtx(t), orderflow.Refund{ID: unique("re"), IdempotencyKey: key, OrderID: id, At: baseTime})
	if err != nil {
		t.Fatalf("RecordRefund: %v", err)
	}
	if !first.Refunded() || first.ChargeID != c.ID || first.Amount != 990 || first.Currency != "USD" || first.OrderID != id {
		t.Errorf("refund = %+v; want charge %s of 990 USD given back", first, c.ID)
	}
	again, err := l.RecordRefund(testCtx(t), orderflow.Refund{ID: unique("re"), IdempotencyKey: key, OrderID: id, At: baseTime.Add(time.Second)})
	if err != nil || again.ID != first.ID || again.ChargeID != c.ID {
		t.Errorf("second RecordRefund = %+v, %v; want the first refund %s", again, err, first.ID)
	}
}

func refundVoids(t *testing.T, l Ledger) {
	key := unique("key")
	id := orderflow.NewOrderID(baseTime)
	r, err := l.RecordRefund(testCtx(t), orderflow.Refund{ID: unique("re"), IdempotencyKey: key, OrderID: id, At: baseTime})
	if err != nil {
		t.Fatalf("RecordRefund: %v", err)
	}
	if r.Refunded() || r.Amount != 0 {
		t.Errorf("refund of an uncharged key = %+v; want no charge given back", r)
	}
	_, _, err = l.RecordCharge(testCtx(t), orderflow.Charge{ID: unique("ch"), IdempotencyKey: key, OrderID: id, Amount: 990, Currency: "USD", At: baseTime})
	wantCode(t, "charge of a voided key", err, orderflow.EConflict)
	if _, ok, err := l.LookupCharge(testCtx(t), key); err != nil || ok {
		t.Errorf("LookupCharge of a voided key: found=%v, %v; want none", ok, err)
	}
}
