package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/orderflow/orderflow"
)

// Store is a store under test with what the suite needs beside the port:
// a way to put orders in (orderflow.Store has none; orders come in through
// an orderflow.Intake) and to set and read stock (seeding, which the
// program does at start).
type Store struct {
	orderflow.Store
	// Create stores o, a new PENDING order, through the adapter's own
	// write path, and returns it as stored.
	Create func(ctx context.Context, o orderflow.Order) (orderflow.Order, error)
	// Stock sets and reads the quantity of a SKU.
	Stock Stocker
}

// Stocker sets and reads stock; Stock returns ENotFound for a SKU never
// stocked.
type Stocker interface {
	SetStock(ctx context.Context, sku string, quantity int) error
	Stock(ctx context.Context, sku string) (int, error)
}

// NewStoreFunc returns a store for one subtest and registers its cleanup
// with t.Cleanup. Subtests use fresh user ids and SKUs, so stores may share
// a backing database.
type NewStoreFunc func(t *testing.T) Store

// TestStore runs the store contract against the stores newStore makes. The
// idempotency of creating orders is the intake's contract (TestIntake).
func TestStore(t *testing.T, newStore NewStoreFunc) {
	t.Helper()
	s := storeSuite{newStore: newStore}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"created order round-trips every field", s.roundTrip},
		{"get of an unknown order is not found", s.getUnknown},
		{"list returns the user's orders newest first and cursor paging covers each once", s.listPaging},
		{"transition forward applies and returns the updated order", s.transitionForward},
		{"transition from a status the order is not in conflicts and returns the current order", s.transitionConflict},
		{"a terminal order never changes", s.terminalNeverChanges},
		{"a backward or reasonless transition is invalid", s.transitionInvalid},
		{"transition of an unknown order is not found", s.transitionUnknown},
		{"concurrent duplicate transitions: exactly one wins", s.concurrentTransitions},
		{"stock of an unstocked sku is not found", s.stockUnknown},
		{"reserve is all or nothing", s.reserveAllOrNothing},
		{"reserve of an unknown sku declines with unknown_sku", s.reserveUnknownSKU},
		{"reserve twice for one order takes stock once and release gives it back once", s.reserveOnce},
		{"release without a reservation is a no-op", s.releaseNothing},
		{"a reserve after the release takes the stock again", s.reserveAfterRelease},
		{"concurrent reserves never oversell", s.concurrentReserve},
		{"user activity counts and sums the user's orders since a time", s.userActivity},
		{"ping succeeds", s.ping},
	}
	tests = append(tests, s.cancelCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

type storeSuite struct {
	newStore NewStoreFunc
}

// unique returns prefix with a random suffix, for user ids, keys and SKUs
// that no other subtest (or earlier run on a shared backend) uses.
func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// baseTime is a fixed instant with sub-millisecond digits, so that stores
// are seen to keep milliseconds.
var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.UTC)

// newOrder returns a valid PENDING order of userID created at at.
func newOrder(userID string, at time.Time, amount int64) orderflow.Order {
	return orderflow.Order{
		ID:        orderflow.NewOrderID(at),
		UserID:    userID,
		Amount:    amount,
		Currency:  "USD",
		Items:     []orderflow.Item{{SKU: "sku-a", Quantity: 2}, {SKU: "sku-b", Quantity: 1}},
		Status:    orderflow.StatusPending,
		RequestID: unique("req"),
		// The W3C trace context of the request that accepted it.
		TraceParent: "00-" + randomHex(16) + "-" + randomHex(8) + "-01",
		CreatedAt:   at,
		UpdatedAt:   at,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func create(t *testing.T, st Store, o orderflow.Order) orderflow.Order {
	t.Helper()
	got, err := st.Create(testCtx(t), o)
	if err != nil {
		t.Fatalf("create order %s: %v", o.ID, err)
	}
	return got
}

func get(t *testing.T, st Store, id orderflow.OrderID) orderflow.Order {
	t.Helper()
	o, err := st.GetOrder(testCtx(t), id)
	if err != nil {
		t.Fatalf("GetOrder(%s): %v", id, err)
	}
	return o
}

// sameOrder compares orders with times to the millisecond.
var sameOrder = cmp.Comparer(func(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
})

func diffOrder(t *testing.T, what string, got, want orderflow.Order) {
	t.Helper()
	if d := cmp.Diff(want, got, sameOrder); d != "" {
		t.Errorf("%s: order mismatch (-want +got):\n%s", what, d)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := orderflow.ErrorCode(err); got != code {
		t.Errorf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func (s storeSuite) roundTrip(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 12345)
	o.Currency = "EUR"
	diffOrder(t, "created order", create(t, st, o), o)
	diffOrder(t, "GetOrder", get(t, st, o.ID), o)

	bare := newOrder(unique("user"), baseTime.Add(time.Second), 1)
	bare.Items, bare.RequestID, bare.TraceParent = nil, "", ""
	create(t, st, bare)
	got := get(t, st, bare.ID)
	if len(got.Items) != 0 || got.RequestID != "" || got.TraceParent != "" || got.Failure != nil {
		t.Errorf("order without items or request id came back as %+v", got)
	}
}

func (s storeSuite) getUnknown(t *testing.T) {
	st := s.newStore(t)
	_, err := st.GetOrder(testCtx(t), orderflow.NewOrderID(time.Now()))
	wantCode(t, "GetOrder of an unknown id", err, orderflow.ENotFound)
}

func (s storeSuite) listPaging(t *testing.T) {
	st := s.newStore(t)
	user, other := unique("user"), unique("other")
	var want []orderflow.OrderID // newest first
	for i := range 7 {
		o := newOrder(user, baseTime.Add(time.Duration(i)*time.Minute), int64(i+1))
		create(t, st, o)
		want = append([]orderflow.OrderID{o.ID}, want...)
		create(t, st, newOrder(other, baseTime.Add(time.Duration(i)*time.Minute+time.Second), 1))
	}
	var got []orderflow.OrderID
	cursor := orderflow.OrderID("")
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("paging did not end after %d pages", page)
		}
		list, err := st.ListOrders(testCtx(t), user, cursor, 3)
		if err != nil {
			t.Fatalf("ListOrders: %v", err)
		}
		if len(list) > 3 {
			t.Fatalf("page of %d orders, want at most 3", len(list))
		}
		if len(list) == 0 {
			break
		}
		for _, o := range list {
			if o.UserID != user {
				t.Errorf("listed order %s of user %q", o.ID, o.UserID)
			}
			got = append(got, o.ID)
		}
		cursor = list[len(list)-1].ID
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("listed ids (-want +got):\n%s", d)
	}
	none, err := st.ListOrders(testCtx(t), unique("nobody"), "", 10)
	if err != nil || len(none) != 0 {
		t.Errorf("ListOrders of a user without orders = %v, %v; want none", none, err)
	}
}

func transition(t *testing.T, st Store, tr orderflow.Transition) orderflow.Order {
	t.Helper()
	o, err := st.Transition(testCtx(t), tr)
	if err != nil {
		t.Fatalf("Transition %v: %v", tr, err)
	}
	return o
}

func (s storeSuite) transitionForward(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 100)
	create(t, st, o)

	at1 := baseTime.Add(time.Second)
	got := transition(t, st, orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at1})
	want := o
	want.Status, want.UpdatedAt = orderflow.StatusProcessing, at1
	diffOrder(t, "after PENDING → PROCESSING", got, want)

	at2 := baseTime.Add(2 * time.Second)
	failure := &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: "sku-a: 2 wanted, 1 left"}
	got = transition(t, st, orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusRejected, Failure: failure, At: at2})
	want.Status, want.UpdatedAt, want.Failure = orderflow.StatusRejected, at2, failure
	diffOrder(t, "after PROCESSING → REJECTED", got, want)
	diffOrder(t, "GetOrder after REJECTED", get(t, st, o.ID), want)

	f := newOrder(unique("user"), baseTime, 100)
	create(t, st, f)
	failed := &orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: "gave up"}
	got = transition(t, st, orderflow.Transition{ID: f.ID, From: orderflow.StatusPending, To: orderflow.StatusFailed, Failure: failed, At: at1})
	if got.Status != orderflow.StatusFailed || got.Failure == nil || *got.Failure != *failed {
		t.Errorf("PENDING → FAILED gave status %s failure %+v, want FAILED %+v", got.Status, got.Failure, failed)
	}
}

func (s storeSuite) transitionConflict(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 100)
	create(t, st, o)
	cur := transition(t, st, orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime.Add(time.Second)})
	got, err := st.Transition(testCtx(t), orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime.Add(2 * time.Second)})
	wantCode(t, "transition from PENDING of a PROCESSING order", err, orderflow.EConflict)
	diffOrder(t, "conflict returns the current order", got, cur)
}

func (s storeSuite) terminalNeverChanges(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 100)
	create(t, st, o)
	transition(t, st, orderflow.Transition{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime.Add(time.Second)})
	done := transition(t, st, orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: baseTime.Add(2 * time.Second)})
	fail := &orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: "late"}
	for _, tr := range []orderflow.Transition{
		{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusFailed, Failure: fail, At: baseTime.Add(3 * time.Second)},
		{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusRejected, Failure: fail, At: baseTime.Add(3 * time.Second)},
		{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCompleted, At: baseTime.Add(3 * time.Second)},
	} {
		_, err := st.Transition(testCtx(t), tr)
		wantCode(t, "transition "+tr.String()+" of a COMPLETED order", err, orderflow.EConflict)
	}
	diffOrder(t, "terminal order after attempts", get(t, st, o.ID), done)
}

func (s storeSuite) transitionInvalid(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 100)
	create(t, st, o)
	for _, tr := range []orderflow.Transition{
		{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusPending, At: baseTime},
		{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusFailed, At: baseTime},
		{ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusCompleted, Failure: &orderflow.Failure{Code: "x"}, At: baseTime},
	} {
		_, err := st.Transition(testCtx(t), tr)
		wantCode(t, "transition "+tr.String(), err, orderflow.EInvalid)
	}
	diffOrder(t, "order after invalid transitions", get(t, st, o.ID), o)
}

func (s storeSuite) transitionUnknown(t *testing.T) {
	st := s.newStore(t)
	_, err := st.Transition(testCtx(t), orderflow.Transition{
		ID: orderflow.NewOrderID(time.Now()), From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime,
	})
	wantCode(t, "transition of an unknown order", err, orderflow.ENotFound)
}

func (s storeSuite) concurrentTransitions(t *testing.T) {
	st := s.newStore(t)
	o := newOrder(unique("user"), baseTime, 100)
	create(t, st, o)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = st.Transition(testCtx(t), orderflow.Transition{
				ID: o.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: baseTime.Add(time.Duration(i+1) * time.Second),
			})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch orderflow.ErrorCode(err) {
		case "":
			wins++
		case orderflow.EConflict:
		default:
			t.Errorf("concurrent transition: unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d concurrent transitions won, want exactly 1", wins)
	}
}

func setStock(t *testing.T, st Store, sku string, n int) {
	t.Helper()
	if err := st.Stock.SetStock(testCtx(t), sku, n); err != nil {
		t.Fatalf("SetStock(%s, %d): %v", sku, n, err)
	}
}

func wantStock(t *testing.T, st Store, sku string, want int) {
	t.Helper()
	got, err := st.Stock.Stock(testCtx(t), sku)
	if err != nil {
		t.Fatalf("Stock(%s): %v", sku, err)
	}
	if got != want {
		t.Errorf("stock of %s is %d, want %d", sku, got, want)
	}
}

func reserve(t *testing.T, st Store, id orderflow.OrderID, items ...orderflow.Item) *orderflow.Failure {
	t.Helper()
	f, err := st.Reserve(testCtx(t), id, items)
	if err != nil {
		t.Fatalf("Reserve(%s): %v", id, err)
	}
	return f
}

func (s storeSuite) stockUnknown(t *testing.T) {
	st := s.newStore(t)
	_, err := st.Stock.Stock(testCtx(t), unique("sku"))
	wantCode(t, "Stock of an unstocked sku", err, orderflow.ENotFound)
	sku := unique("sku")
	setStock(t, st, sku, 3)
	setStock(t, st, sku, 7)
	wantStock(t, st, sku, 7)
}

func (s storeSuite) reserveAllOrNothing(t *testing.T) {
	st := s.newStore(t)
	plenty, short := unique("sku"), unique("sku")
	setStock(t, st, plenty, 5)
	setStock(t, st, short, 1)
	f := reserve(t, st, orderflow.NewOrderID(time.Now()), orderflow.Item{SKU: plenty, Quantity: 2}, orderflow.Item{SKU: short, Quantity: 2})
	if f == nil || f.Code != orderflow.ReasonOutOfStock {
		t.Errorf("reserve with one sku short: got failure %+v, want %q", f, orderflow.ReasonOutOfStock)
	}
	wantStock(t, st, plenty, 5)
	wantStock(t, st, short, 1)
}

func (s storeSuite) reserveUnknownSKU(t *testing.T) {
	st := s.newStore(t)
	known := unique("sku")
	setStock(t, st, known, 5)
	f := reserve(t, st, orderflow.NewOrderID(time.Now()), orderflow.Item{SKU: known, Quantity: 1}, orderflow.Item{SKU: unique("sku"), Quantity: 1})
	if f == nil || f.Code != orderflow.ReasonUnknownSKU {
		t.Errorf("reserve with an unknown sku: got failure %+v, want %q", f, orderflow.ReasonUnknownSKU)
	}
	wantStock(t, st, known, 5)
}

func (s storeSuite) reserveOnce(t *testing.T) {
	st := s.newStore(t)
	a, b := unique("sku"), unique("sku")
	setStock(t, st, a, 5)
	setStock(t, st, b, 3)
	id := orderflow.NewOrderID(time.Now())
	items := []orderflow.Item{{SKU: a, Quantity: 2}, {SKU: b, Quantity: 3}}
	for i := range 2 {
		if f := reserve(t, st, id, items...); f != nil {
			t.Fatalf("reserve %d: got failure %+v, want none", i+1, f)
		}
	}
	wantStock(t, st, a, 3)
	wantStock(t, st, b, 0)
	for i := range 2 {
		if err := st.Release(testCtx(t), id); err != nil {
			t.Fatalf("release %d: %v", i+1, err)
		}
	}
	wantStock(t, st, a, 5)
	wantStock(t, st, b, 3)
}

// reserveAfterRelease: a Reserve after the order's Release takes the
// stock again (an attempt that released and died before its final write
// leaves the order to the next attempt, which must not go on with stock
// it no longer holds), once, and declines when the stock went meanwhile.
func (s storeSuite) reserveAfterRelease(t *testing.T) {
	st := s.newStore(t)
	sku := unique("sku")
	setStock(t, st, sku, 5)
	id := orderflow.NewOrderID(time.Now())
	item := orderflow.Item{SKU: sku, Quantity: 2}
	reserve(t, st, id, item)
	if err := st.Release(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if f := reserve(t, st, id, item); f != nil {
			t.Fatalf("reserve %d after the release: got failure %+v, want none", i+1, f)
		}
	}
	wantStock(t, st, sku, 3)
	if err := st.Release(testCtx(t), id); err != nil {
		t.Fatal(err)
	}
	wantStock(t, st, sku, 5)
	setStock(t, st, sku, 1)
	if f := reserve(t, st, id, item); f == nil || f.Code != orderflow.ReasonOutOfStock {
		t.Errorf("reserve after the release with the stock gone: got failure %+v, want %q", f, orderflow.ReasonOutOfStock)
	}
	wantStock(t, st, sku, 1)
}

func (s storeSuite) releaseNothing(t *testing.T) {
	st := s.newStore(t)
	sku := unique("sku")
	setStock(t, st, sku, 4)
	if err := st.Release(testCtx(t), orderflow.NewOrderID(time.Now())); err != nil {
		t.Errorf("Release without a reservation: %v", err)
	}
	wantStock(t, st, sku, 4)
}

func (s storeSuite) concurrentReserve(t *testing.T) {
	st := s.newStore(t)
	sku := unique("sku")
	const stock, orders = 10, 30
	setStock(t, st, sku, stock)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, outs int
		errs     []error
	)
	for range orders {
		wg.Go(func() {
			f, err := st.Reserve(testCtx(t), orderflow.NewOrderID(time.Now()), []orderflow.Item{{SKU: sku, Quantity: 1}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case f == nil:
				ok++
			case f.Code == orderflow.ReasonOutOfStock:
				outs++
			default:
				errs = append(errs, fmt.Errorf("unexpected failure %+v", f))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Reserve: %v", err)
	}
	if ok != stock || outs != orders-stock {
		t.Errorf("got %d reserved and %d out of stock, want %d and %d", ok, outs, stock, orders-stock)
	}
	wantStock(t, st, sku, 0)
}

func (s storeSuite) userActivity(t *testing.T) {
	st := s.newStore(t)
	user, other := unique("user"), unique("other")
	since := baseTime.Add(time.Hour)
	for i, c := range []struct {
		at     time.Time
		amount int64
	}{
		{since.Add(-time.Minute), 1000}, // before the window
		{since, 200},                    // at the start: counted
		{since.Add(time.Minute), 30},
		{since.Add(2 * time.Minute), 4},
	} {
		o := newOrder(user, c.at, c.amount)
		if i%2 == 0 {
			o.Currency = "EUR"
		}
		create(t, st, o)
	}
	create(t, st, newOrder(other, since.Add(time.Minute), 50000))
	n, total, err := st.UserActivity(testCtx(t), user, since)
	if err != nil {
		t.Fatalf("UserActivity: %v", err)
	}
	if n != 3 || total != 234 {
		t.Errorf("UserActivity = %d orders totalling %d, want 3 totalling 234", n, total)
	}
	n, total, err = st.UserActivity(testCtx(t), unique("nobody"), since)
	if err != nil || n != 0 || total != 0 {
		t.Errorf("UserActivity of a user without orders = %d, %d, %v; want 0, 0, nil", n, total, err)
	}
}

func (s storeSuite) ping(t *testing.T) {
	st := s.newStore(t)
	if err := st.Ping(testCtx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
