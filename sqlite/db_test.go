package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func order(user string, at time.Time) orderflow.Order {
	return orderflow.Order{
		ID:        orderflow.NewOrderID(at),
		UserID:    user,
		Amount:    1999,
		Currency:  "USD",
		Items:     []orderflow.Item{{SKU: "widget", Quantity: 1}},
		Status:    orderflow.StatusPending,
		RequestID: "req-" + user,
		CreatedAt: at,
		UpdatedAt: at,
	}
}

func accept(t *testing.T, db *sqlite.DB, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool) {
	t.Helper()
	got, created, err := db.Accept(ctx(t), o, key)
	if err != nil {
		t.Fatalf("Accept(%s): %v", o.ID, err)
	}
	return got, created
}

func depth(t *testing.T, db *sqlite.DB) orderflow.QueueDepth {
	t.Helper()
	d, err := db.Depth(ctx(t))
	if err != nil {
		t.Fatalf("Depth: %v", err)
	}
	return d
}

func receive(t *testing.T, db *sqlite.DB, max int) []orderflow.Delivery {
	t.Helper()
	ds, err := db.Receive(ctx(t), max, 0)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return ds
}

func TestAcceptStoresOrderAndMessageTogether(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	o := order("alice", t0)
	key := orderflow.IdempotencyKey{UserID: "alice", Key: "k1", RequestHash: "h1"}
	if _, created := accept(t, db, o, key); !created {
		t.Fatalf("first Accept: created = false")
	}
	if got, err := db.GetOrder(ctx(t), o.ID); err != nil || got.Status != orderflow.StatusPending {
		t.Fatalf("GetOrder after Accept = %+v, %v; want the PENDING order", got, err)
	}
	if got, want := depth(t, db), (orderflow.QueueDepth{Visible: 1}); got != want {
		t.Errorf("depth after Accept = %+v, want %+v", got, want)
	}

	// A replay returns the original and enqueues nothing.
	replay := order("alice", t0.Add(time.Second))
	got, created := accept(t, db, replay, key)
	if created || got.ID != o.ID {
		t.Errorf("replay returned %s created=%v, want %s created=false", got.ID, created, o.ID)
	}
	// A mismatched key fails and enqueues nothing either.
	_, _, err := db.Accept(ctx(t), order("alice", t0.Add(2*time.Second)), orderflow.IdempotencyKey{UserID: "alice", Key: "k1", RequestHash: "other"})
	if orderflow.ErrorCode(err) != orderflow.EMismatch {
		t.Errorf("Accept with a reused key and another hash: got %v, want %s", err, orderflow.EMismatch)
	}
	if got, want := depth(t, db), (orderflow.QueueDepth{Visible: 1}); got != want {
		t.Errorf("depth after replay and mismatch = %+v, want %+v", got, want)
	}
	ds := receive(t, db, 10)
	if len(ds) != 1 || ds[0].OrderID != o.ID || ds[0].RequestID != o.RequestID {
		t.Fatalf("received %+v, want one message for %s with request id %q", ds, o.ID, o.RequestID)
	}
}

func TestAcceptRejectsInvalidOrders(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	processing := order("bob", t0)
	processing.Status = orderflow.StatusProcessing
	noID := order("bob", t0)
	noID.ID = ""
	for name, o := range map[string]orderflow.Order{"status not PENDING": processing, "no id": noID} {
		if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("%s: got %v, want %s", name, err, orderflow.EInvalid)
		}
	}
	o := order("bob", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("Accept of an existing order id: got %v, want %s", err, orderflow.EConflict)
	}
	if got, want := depth(t, db), (orderflow.QueueDepth{Visible: 1}); got != want {
		t.Errorf("depth = %+v, want %+v (failed accepts enqueue nothing)", got, want)
	}
}

func TestAcceptFillsMissingTimes(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	db, _ := open(t, sqlite.Options{Now: clk.Now})
	o := order("carol", t0)
	o.CreatedAt, o.UpdatedAt = time.Time{}, time.Time{}
	got, _ := accept(t, db, o, orderflow.IdempotencyKey{})
	if !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Errorf("got created %v updated %v, want both %v", got.CreatedAt, got.UpdatedAt, t0)
	}
}

func TestDataSurvivesCloseAndOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orderflow.db")
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var ids []orderflow.OrderID
	for i := range 20 {
		o := order("dave", t0.Add(time.Duration(i)*time.Millisecond))
		accept(t, db, o, orderflow.IdempotencyKey{UserID: "dave", Key: fmt.Sprint("key-", i), RequestHash: "h"})
		ids = append(ids, o.ID)
	}
	if err := db.SetStock(ctx(t), "widget", 7); err != nil {
		t.Fatalf("SetStock: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db, err = sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	for _, id := range ids {
		if _, err := db.GetOrder(ctx(t), id); err != nil {
			t.Errorf("GetOrder(%s) after reopen: %v", id, err)
		}
	}
	if n, err := db.Stock(ctx(t), "widget"); err != nil || n != 7 {
		t.Errorf("Stock after reopen = %d, %v; want 7", n, err)
	}
	// The idempotency records survived too: a replay creates nothing.
	if _, created := accept(t, db, order("dave", t0), orderflow.IdempotencyKey{UserID: "dave", Key: "key-3", RequestHash: "h"}); created {
		t.Errorf("replay after reopen created a new order")
	}
	if got, want := depth(t, db), (orderflow.QueueDepth{Visible: len(ids)}); got != want {
		t.Errorf("depth after reopen = %+v, want %+v", got, want)
	}
}

func mustTransition(t *testing.T, db *sqlite.DB, tr orderflow.Transition) orderflow.Order {
	t.Helper()
	o, err := db.Transition(ctx(t), tr)
	if err != nil {
		t.Fatalf("Transition %v: %v", tr, err)
	}
	return o
}

func TestStaleReceiptNoLongerWorks(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	accept(t, db, order("frank", t0), orderflow.IdempotencyKey{})
	first := receive(t, db, 1)[0]
	if err := db.ChangeVisibility(ctx(t), first.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility: %v", err)
	}
	second := receive(t, db, 1)[0]
	if err := db.ChangeVisibility(ctx(t), first.Receipt, time.Minute); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("ChangeVisibility with a stale receipt: got %v, want %s", err, orderflow.ENotFound)
	}
	var be *orderflow.BatchError
	if err := db.Delete(ctx(t), first.Receipt); !errors.As(err, &be) || be.Failed[first.Receipt] == nil {
		t.Errorf("Delete with a stale receipt: got %v, want a BatchError naming it", err)
	}
	if err := db.Delete(ctx(t), second.Receipt); err != nil {
		t.Errorf("Delete with the current receipt: %v", err)
	}
	if got := depth(t, db); got != (orderflow.QueueDepth{}) {
		t.Errorf("depth after delete = %+v, want empty", got)
	}
}

func TestQueueRejectsBadArguments(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	for name, err := range map[string]error{
		"negative visibility":     db.ChangeVisibility(ctx(t), "1.abc", -time.Second),
		"visibility beyond 12h":   db.ChangeVisibility(ctx(t), "1.abc", 13*time.Hour),
		"malformed receipt":       db.ChangeVisibility(ctx(t), "garbage", 0),
		"raw body beyond 256 KiB": db.SendRaw(ctx(t), make([]byte, 257<<10)),
	} {
		if orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("%s: got %v, want %s", name, err, orderflow.EInvalid)
		}
	}
	for name, err := range map[string]error{
		"send of nothing":   db.Send(ctx(t)),
		"delete of nothing": db.Delete(ctx(t)),
	} {
		if err != nil {
			t.Errorf("%s: got %v, want nil", name, err)
		}
	}
	if ds, err := db.ListDead(ctx(t), 0); err != nil || len(ds) != 0 {
		t.Errorf("ListDead(0) = %v, %v; want nothing", ds, err)
	}
	if n, err := db.Redrive(ctx(t), 0); err != nil || n != 0 {
		t.Errorf("Redrive(0) = %d, %v; want 0", n, err)
	}
	accept(t, db, order("gina", t0), orderflow.IdempotencyKey{})
	if ds, err := db.Receive(ctx(t), 0, 0); err != nil || len(ds) != 1 {
		t.Errorf("Receive(max 0) = %d messages, %v; want 1", len(ds), err)
	}
}

func TestReceiveWakesOnAccept(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	// Only the wake-up can end this receive early: it polls once an hour
	// and the order is accepted after it found the queue empty.
	db.SetPollInterval(time.Hour)
	waiting := make(chan struct{})
	var once sync.Once
	db.SetBeforeWait(func() { once.Do(func() { close(waiting) }) })
	const wait = 10 * time.Second
	type result struct {
		ds      []orderflow.Delivery
		elapsed time.Duration
	}
	got := make(chan result, 1)
	go func() {
		start := time.Now()
		ds, _ := db.Receive(context.Background(), 10, wait)
		got <- result{ds, time.Since(start)}
	}()
	<-waiting
	o := order("hank", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	r := <-got
	if len(r.ds) != 1 || r.ds[0].OrderID != o.ID {
		t.Errorf("waiting Receive got %+v, want the accepted order's message", r.ds)
	}
	if r.elapsed > wait/2 {
		t.Errorf("waiting Receive returned after %s, want well before its wait of %s ends", r.elapsed, wait)
	}
}

func TestReceiveStopsWhenContextEndsOrDBCloses(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	db.SetPollInterval(time.Hour)
	waiting := make(chan struct{}, 2)
	db.SetBeforeWait(func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	})
	c, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := db.Receive(c, 10, time.Minute)
		errc <- err
	}()
	<-waiting
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Receive after cancel: got %v, want context.Canceled", err)
	}

	go func() {
		_, err := db.Receive(context.Background(), 10, time.Minute)
		errc <- err
	}()
	<-waiting
	db.Close()
	if err := <-errc; orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("Receive during Close: got %v, want %s", err, orderflow.EUnavailable)
	}
}

func TestJanitorPurgesKeysOnlyAfterTTL(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	db, _ := open(t, sqlite.Options{Now: clk.Now, IdempotencyTTL: time.Hour, JanitorInterval: time.Hour})
	key := orderflow.IdempotencyKey{UserID: "ivy", Key: "once", RequestHash: "h"}
	first := order("ivy", t0)
	accept(t, db, first, key)

	clk.Set(t0.Add(time.Hour)) // exactly the TTL: not older than it yet
	if n, err := db.PurgeExpiredKeys(ctx(t)); err != nil || n != 0 {
		t.Errorf("purge at the TTL = %d, %v; want 0", n, err)
	}
	if got, created := accept(t, db, order("ivy", t0.Add(time.Hour)), key); created || got.ID != first.ID {
		t.Errorf("replay at the TTL created a new order")
	}

	clk.Set(t0.Add(time.Hour + time.Millisecond))
	if n, err := db.PurgeExpiredKeys(ctx(t)); err != nil || n != 1 {
		t.Errorf("purge past the TTL = %d, %v; want 1", n, err)
	}
	if _, created := accept(t, db, order("ivy", t0.Add(2*time.Hour)), key); !created {
		t.Errorf("after the record expired the key did not create a new order")
	}
}

func TestJanitorRunsInTheBackground(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	db, _ := open(t, sqlite.Options{Now: clk.Now, IdempotencyTTL: time.Minute, JanitorInterval: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for g := range 30 { // 1500 keys, more than one purge chunk
		wg.Go(func() {
			for i := range 50 {
				key := orderflow.IdempotencyKey{UserID: "jack", Key: fmt.Sprint("k", g*50+i), RequestHash: "h"}
				if _, _, err := db.Accept(ctx(t), order("jack", t0), key); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	clk.Set(t0.Add(2 * time.Minute))
	key := orderflow.IdempotencyKey{UserID: "jack", Key: "k1499", RequestHash: "other"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Once the record is gone the reused key is fresh instead of a mismatch.
		_, created, err := db.Accept(ctx(t), order("jack", t0.Add(2*time.Minute)), key)
		if err == nil && created {
			return
		}
		if orderflow.ErrorCode(err) != orderflow.EMismatch {
			t.Fatalf("Accept: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("janitor did not purge the expired record within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConcurrentAcceptLosesNothing(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	const goroutines, each = 64, 20
	var wg sync.WaitGroup
	ids := make([][]orderflow.OrderID, goroutines)
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			user := fmt.Sprint("user-", g)
			for i := range each {
				o := order(user, t0.Add(time.Duration(i)*time.Millisecond))
				key := orderflow.IdempotencyKey{UserID: user, Key: fmt.Sprint("k", i), RequestHash: "h"}
				if _, _, err := db.Accept(context.Background(), o, key); err != nil {
					errs <- err
					return
				}
				ids[g] = append(ids[g], o.ID)
				// A mismatching reuse in the same batch fails alone.
				key.RequestHash = "other"
				if _, _, err := db.Accept(context.Background(), order(user, t0), key); orderflow.ErrorCode(err) != orderflow.EMismatch {
					errs <- fmt.Errorf("mismatched reuse: got %v, want %s", err, orderflow.EMismatch)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[orderflow.OrderID]bool{}
	for g := range ids {
		for _, id := range ids[g] {
			want[id] = true
		}
	}
	if len(want) != goroutines*each {
		t.Fatalf("accepted %d distinct orders, want %d", len(want), goroutines*each)
	}
	got := map[orderflow.OrderID]int{}
	for {
		ds := receive(t, db, 100)
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			got[d.OrderID]++
			if _, err := db.GetOrder(ctx(t), d.OrderID); err != nil {
				t.Errorf("message for order %s without the order: %v", d.OrderID, err)
			}
		}
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("order %s has %d messages, want 1", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("queue holds messages for %d orders, want %d", len(got), len(want))
	}
}

func TestRecordChargeOnce(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	db, _ := open(t, sqlite.Options{Now: clk.Now})
	id := orderflow.NewOrderID(t0)
	c := orderflow.Charge{ID: "ch_1", IdempotencyKey: string(id), OrderID: id, Amount: 500, Currency: "USD"}
	got, dup, err := db.RecordCharge(ctx(t), c)
	if err != nil || dup {
		t.Fatalf("first RecordCharge = %+v, %v, %v; want stored, not duplicate", got, dup, err)
	}
	want := c
	want.At = t0
	if got != want {
		t.Errorf("stored charge %+v, want %+v", got, want)
	}
	again := c
	again.ID, again.Amount = "ch_2", 999
	got, dup, err = db.RecordCharge(ctx(t), again)
	if err != nil || !dup || got != want {
		t.Errorf("second RecordCharge = %+v, %v, %v; want the first charge as a duplicate", got, dup, err)
	}
	list, err := db.Charges(ctx(t), id)
	if err != nil || len(list) != 1 || list[0] != want {
		t.Errorf("Charges = %+v, %v; want exactly %+v", list, err, want)
	}
	if _, _, err := db.RecordCharge(ctx(t), orderflow.Charge{ID: "x"}); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("charge without a key: got %v, want %s", err, orderflow.EInvalid)
	}
}

func TestStoreRejectsBadArguments(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	for name, err := range map[string]error{
		"negative stock":     db.SetStock(ctx(t), "widget", -1),
		"stock without sku":  db.SetStock(ctx(t), "", 1),
		"reserve without id": func() error { _, err := db.Reserve(ctx(t), "", nil); return err }(),
		"reserve of zero": func() error {
			_, err := db.Reserve(ctx(t), orderflow.NewOrderID(t0), []orderflow.Item{{SKU: "widget", Quantity: 0}})
			return err
		}(),
	} {
		if orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("%s: got %v, want %s", name, err, orderflow.EInvalid)
		}
	}
}

// Accept takes only new orders: PENDING, with an id. Anything else is
// EInvalid, and neither stored nor queued.
func TestAcceptRefusesAnOrderThatIsNotNew(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	noID, done := order("lee", t0), order("lee", t0)
	noID.ID = ""
	done.Status = orderflow.StatusCompleted
	for name, o := range map[string]orderflow.Order{"without an id": noID, "COMPLETED": done} {
		if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("Accept of an order %s: got %v, want EInvalid", name, err)
		}
	}
	if d, err := db.Depth(ctx(t)); err != nil || d.Visible != 0 {
		t.Errorf("queue after refused orders: %+v, %v; want empty", d, err)
	}
	if _, err := db.GetOrder(ctx(t), done.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("refused order stored: GetOrder = %v, want ENotFound", err)
	}
}

// A repeated SKU never reaches Reserve: Order.Validate rejects it
// (TestOrderValidate, and httpapi's "repeated sku is 422").
func TestReserveRemembersDeclines(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	if err := db.SetStock(ctx(t), "widget", 3); err != nil {
		t.Fatal(err)
	}
	id := orderflow.NewOrderID(t0)
	f, err := db.Reserve(ctx(t), id, []orderflow.Item{{SKU: "widget", Quantity: 4}})
	if err != nil || f == nil || f.Code != orderflow.ReasonOutOfStock {
		t.Fatalf("Reserve of 4 from 3 = %+v, %v; want out of stock", f, err)
	}
	if err := db.SetStock(ctx(t), "widget", 10); err != nil {
		t.Fatal(err)
	}
	again, err := db.Reserve(ctx(t), id, []orderflow.Item{{SKU: "widget", Quantity: 4}})
	if err != nil || again == nil || *again != *f {
		t.Errorf("second Reserve = %+v, %v; want the first outcome %+v", again, err, f)
	}
	if n, _ := db.Stock(ctx(t), "widget"); n != 10 {
		t.Errorf("stock = %d, want 10", n)
	}
}

func TestListOrdersClampsLimit(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	for i := range 25 {
		accept(t, db, order("kim", t0.Add(time.Duration(i)*time.Millisecond)), orderflow.IdempotencyKey{})
	}
	list, err := db.ListOrders(ctx(t), "kim", "", 0)
	if err != nil || len(list) != 20 {
		t.Errorf("ListOrders(limit 0) = %d orders, %v; want the default 20", len(list), err)
	}
}

func TestClosedDBReturnsErrors(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	accept(t, db, order("lee", t0), orderflow.IdempotencyKey{})
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c := context.Background()
	id := orderflow.NewOrderID(t0)
	calls := map[string]func() error{
		"Accept":     func() error { _, _, err := db.Accept(c, order("lee", t0), orderflow.IdempotencyKey{}); return err },
		"GetOrder":   func() error { _, err := db.GetOrder(c, id); return err },
		"ListOrders": func() error { _, err := db.ListOrders(c, "lee", "", 10); return err },
		"Transition": func() error {
			_, err := db.Transition(c, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing})
			return err
		},
		"Reserve":          func() error { _, err := db.Reserve(c, id, nil); return err },
		"Release":          func() error { return db.Release(c, id) },
		"SetStock":         func() error { return db.SetStock(c, "widget", 1) },
		"Stock":            func() error { _, err := db.Stock(c, "widget"); return err },
		"UserActivity":     func() error { _, _, err := db.UserActivity(c, "lee", t0); return err },
		"Ping":             func() error { return db.Ping(c) },
		"Send":             func() error { return db.Send(c, orderflow.Message{OrderID: id}) },
		"SendRaw":          func() error { return db.SendRaw(c, []byte("x")) },
		"Receive":          func() error { _, err := db.Receive(c, 1, time.Second); return err },
		"Delete":           func() error { return db.Delete(c, "1.a") },
		"ChangeVisibility": func() error { return db.ChangeVisibility(c, "1.a", 0) },
		"Depth":            func() error { _, err := db.Depth(c); return err },
		"ListDead":         func() error { _, err := db.ListDead(c, 1); return err },
		"Redrive":          func() error { _, err := db.Redrive(c, 1); return err },
		"Purge":            func() error { _, err := db.Purge(c); return err },
		"RecordCharge": func() error {
			_, _, err := db.RecordCharge(c, orderflow.Charge{ID: "c", IdempotencyKey: "k"})
			return err
		},
		"CountAttempt":     func() error { _, err := db.CountAttempt(c, "k"); return err },
		"Charges":          func() error { _, err := db.Charges(c, id); return err },
		"PurgeExpiredKeys": func() error { _, err := db.PurgeExpiredKeys(c); return err },
	}
	for name, call := range calls {
		if err := call(); orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("%s on a closed DB: got %v, want %s", name, err, orderflow.EUnavailable)
		}
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	c, cancel := context.WithCancel(context.Background())
	cancel()
	o := order("max", t0)
	if _, _, err := db.Accept(c, o, orderflow.IdempotencyKey{}); err == nil {
		t.Fatalf("Accept with a canceled context succeeded")
	}
	if _, err := db.GetOrder(ctx(t), o.ID); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("GetOrder after a canceled Accept: got %v, want %s", err, orderflow.ENotFound)
	}
}

// TestKeyReadsRefuseAnEndedContext: the reads by key run without their
// context's cancellation (see keyRead), so they look at it before they
// start: a context that has ended reads nothing, and the store is not
// judged unhealthy for it.
func TestKeyReadsRefuseAnEndedContext(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	o := order("mia", t0)
	if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.GetOrder(c, o.ID); orderflow.ErrorCode(err) != orderflow.EUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("GetOrder with a canceled context: got %v, want %s for context.Canceled", err, orderflow.EUnavailable)
	}
	if _, err := db.Undisturbed(c, o.ID, orderflow.StatusPending); orderflow.ErrorCode(err) != orderflow.EUnavailable || !errors.Is(err, context.Canceled) {
		t.Errorf("Undisturbed with a canceled context: got %v, want %s for context.Canceled", err, orderflow.EUnavailable)
	}
	if got, err := db.GetOrder(ctx(t), o.ID); err != nil || got.ID != o.ID {
		t.Errorf("GetOrder afterwards: %v, %v", got.ID, err)
	}
	if same, err := db.Undisturbed(ctx(t), o.ID, orderflow.StatusPending); err != nil || !same {
		t.Errorf("Undisturbed afterwards: %v, %v; want true", same, err)
	}
	if err := db.Ping(ctx(t)); err != nil {
		t.Errorf("Ping after the refused reads: %v", err)
	}
}

func TestOpenValidatesOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, c := range map[string]struct {
		path string
		opts sqlite.Options
	}{
		"empty path":           {"", sqlite.Options{}},
		"in-memory database":   {":memory:", sqlite.Options{}},
		"query in path":        {filepath.Join(dir, "x.db?mode=ro"), sqlite.Options{}},
		"unknown synchronous":  {filepath.Join(dir, "y.db"), sqlite.Options{Synchronous: "SOMETIMES"}},
		"synchronous OFF lies": {filepath.Join(dir, "z.db"), sqlite.Options{Synchronous: "off"}},
	} {
		if db, err := sqlite.Open(ctx(t), c.path, c.opts); orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("%s: got %v, want %s", name, err, orderflow.EInvalid)
			if db != nil {
				db.Close()
			}
		}
	}
	if _, err := sqlite.Open(ctx(t), filepath.Join(dir, "no", "such", "dir.db"), sqlite.Options{}); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("file in a missing directory: got %v, want %s", err, orderflow.EUnavailable)
	}
}

func TestSynchronousNormalWorks(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{Synchronous: "normal"})
	accept(t, db, order("ned", t0), orderflow.IdempotencyKey{})
	if err := db.Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestCheckpointerCopiesCommitsIntoTheFile: the background checkpointer
// moves committed pages from the WAL into the database file, so that a copy
// of the file alone (without its WAL) holds an order soon after its Accept.
func TestCheckpointerCopiesCommitsIntoTheFile(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{})
	o := order("kim", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	waitInFile(t, path, o.ID)
}

// TestCheckpointerFinishesAfterAReaderLetGo: a reader holding an old
// snapshot keeps a checkpoint from copying the newer frames; once it lets
// go, the checkpointer copies them even if nothing more is committed.
func TestCheckpointerFinishesAfterAReaderLetGo(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{})
	accept(t, db, order("kim", t0), orderflow.IdempotencyKey{})
	reader, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader sees %d orders, %v; want 1", n, err)
	}
	o := order("kim", t0.Add(time.Millisecond))
	accept(t, db, o, orderflow.IdempotencyKey{})
	// Checkpoints run, but cannot copy the new frames: wait for two, the
	// second begun after the Accept committed.
	checkpoints := make(chan struct{}, 2)
	db.SetAfterCheckpoint(func() {
		select {
		case checkpoints <- struct{}{}:
		default:
		}
	})
	for range 2 {
		select {
		case <-checkpoints:
		case <-time.After(30 * time.Second):
			t.Fatal("no checkpoint ran within 30s")
		}
	}
	if inFile(t, path, o.ID) {
		t.Fatalf("the order reached the file while a reader held the older snapshot")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitInFile(t, path, o.ID)
}

// waitInFile waits up to 10 s for order id to be in the database file at
// path itself (checkpointed), not only in its WAL.
func waitInFile(t *testing.T, path string, id orderflow.OrderID) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !inFile(t, path, id); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("order %s was not checkpointed into the database file within 10s", id)
		}
	}
}

// inFile reports whether order id is in a copy of the database file at
// path taken without its WAL.
func inFile(t *testing.T, path string, id orderflow.OrderID) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := path + ".copy" // in the test's temporary directory, replaced on each call
	for _, p := range []string{copyPath + "-wal", copyPath + "-shm"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cdb, err := sql.Open("sqlite", copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	var n int
	// Before the first checkpoint the file may not have the table yet.
	if err := cdb.QueryRow(`SELECT count(*) FROM orders WHERE id = ?`, string(id)).Scan(&n); err != nil && !strings.Contains(err.Error(), "no such table") {
		t.Fatal(err)
	}
	return n == 1
}

// TestWorkQueueStartsTheOrdersItHandsOut: the processor's receive moves
// each message's PENDING order to PROCESSING in the same write, and
// StartOrder answers for it from that receive (the order as the receive
// stored it, once); for any other order StartOrder is the store's. Receive
// leaves orders alone.
func TestWorkQueueStartsTheOrdersItHandsOut(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	db, _ := open(t, sqlite.Options{Now: clk.Now})
	wq := db.WorkQueue()
	pending, running := order("lee", t0), order("lee", t0.Add(time.Millisecond))
	accept(t, db, pending, orderflow.IdempotencyKey{})
	accept(t, db, running, orderflow.IdempotencyKey{})
	mustTransition(t, db, orderflow.Transition{ID: running.ID, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: t0})
	missing := orderflow.NewOrderID(t0)
	if err := db.Send(ctx(t), orderflow.Message{OrderID: missing}); err != nil {
		t.Fatal(err)
	}
	corrupt := order("lee", t0.Add(3*time.Millisecond))
	accept(t, db, corrupt, orderflow.IdempotencyKey{})
	if err := db.ExecOnWriter(ctx(t), `UPDATE orders SET items = 'not json' WHERE id = '`+string(corrupt.ID)+`'`); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecOnWriter(ctx(t), `INSERT INTO queue (body, receive_count, visible_at, receipt, sent_at) VALUES ('poison', 0, 0, '', 0)`); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Second))

	// A row that cannot be read fails only its own order's start, not the
	// receive.
	ds, err := wq.Receive(ctx(t), 10, 0)
	if err != nil || len(ds) != 5 {
		t.Fatalf("Receive = %d deliveries, %v; want 5", len(ds), err)
	}
	if got, err := db.GetOrder(ctx(t), pending.ID); err != nil || got.Status != orderflow.StatusProcessing {
		t.Errorf("stored pending order after the receive = %+v, %v; want PROCESSING", got, err)
	}
	later := t0.Add(time.Hour) // a StartOrder that wrote would store this
	got, err := wq.StartOrder(ctx(t), pending.ID, later)
	if err != nil || got.Status != orderflow.StatusProcessing || !got.UpdatedAt.Equal(t0.Add(time.Second)) || got.UserID != "lee" {
		t.Errorf("StartOrder of the order the receive started = %+v, %v; want it PROCESSING since the receive", got, err)
	}
	if got, err := wq.StartOrder(ctx(t), pending.ID, later); orderflow.ErrorCode(err) != orderflow.EConflict || got.Status != orderflow.StatusProcessing {
		t.Errorf("second StartOrder = %+v, %v; want the PROCESSING order and EConflict", got, err)
	}
	if got, err := wq.StartOrder(ctx(t), running.ID, later); orderflow.ErrorCode(err) != orderflow.EConflict || got.Status != orderflow.StatusProcessing {
		t.Errorf("StartOrder of the running order = %+v, %v; want it PROCESSING and EConflict (not started again)", got, err)
	}
	if _, err := wq.StartOrder(ctx(t), missing, later); orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("StartOrder of the missing order: %v, want ENotFound", err)
	}
	if _, err := wq.StartOrder(ctx(t), corrupt.ID, later); err == nil {
		t.Error("StartOrder of the corrupt order succeeded")
	}

	plain := order("lee", t0.Add(2*time.Millisecond))
	accept(t, db, plain, orderflow.IdempotencyKey{})
	if ds := receive(t, db, 10); len(ds) != 1 {
		t.Fatalf("Receive = %+v; want one delivery", ds)
	}
	if got, err := db.GetOrder(ctx(t), plain.ID); err != nil || got.Status != orderflow.StatusPending {
		t.Errorf("order after Receive = %+v, %v; want PENDING", got, err)
	}
}

// TestWorkQueueForgetsAStartALaterReceiveSupersedes: what a work queue
// recorded of a receive that started an order, never asked for, gives way
// to a later receive of the order's message: StartOrder then answers from
// the store.
func TestWorkQueueForgetsAStartALaterReceiveSupersedes(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	wq := db.WorkQueue()
	o := order("max", t0)
	accept(t, db, o, orderflow.IdempotencyKey{})
	ds, err := wq.Receive(ctx(t), 10, 0)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive = %d deliveries, %v; want 1", len(ds), err)
	}
	if err := wq.ChangeVisibility(ctx(t), ds[0].Receipt, 0); err != nil {
		t.Fatal(err)
	}
	if ds, err := wq.Receive(ctx(t), 10, 0); err != nil || len(ds) != 1 {
		t.Fatalf("second Receive = %d deliveries, %v; want 1", len(ds), err)
	}
	if got, err := wq.StartOrder(ctx(t), o.ID, t0); orderflow.ErrorCode(err) != orderflow.EConflict || got.Status != orderflow.StatusProcessing {
		t.Errorf("StartOrder after the second receive = %+v, %v; want the PROCESSING order and EConflict", got, err)
	}
}

// TestWorkQueueHoldsBoundedStarts: a work queue holds at most its limit of
// started orders not yet asked for; beyond, its receive leaves the orders
// PENDING for StartOrder to start.
func TestWorkQueueHoldsBoundedStarts(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	wq := db.WorkQueue()
	sqlite.SetStartedLimit(wq, 2)
	var os []orderflow.Order
	for i := range 3 {
		o := order("kim", t0.Add(time.Duration(i)*time.Millisecond))
		accept(t, db, o, orderflow.IdempotencyKey{})
		os = append(os, o)
	}
	if ds, err := wq.Receive(ctx(t), 10, 0); err != nil || len(ds) != 3 {
		t.Fatalf("Receive = %d deliveries, %v; want 3", len(ds), err)
	}
	started := 0
	for _, o := range os {
		if got, err := db.GetOrder(ctx(t), o.ID); err == nil && got.Status == orderflow.StatusProcessing {
			started++
		}
	}
	if started != 2 {
		t.Errorf("orders the receive started = %d, want 2 (the limit)", started)
	}
	for _, o := range os {
		if got, err := wq.StartOrder(ctx(t), o.ID, t0); err != nil || got.Status != orderflow.StatusProcessing {
			t.Errorf("StartOrder of %s = %+v, %v; want it started", o.ID, got, err)
		}
	}
}

// TestOpenMigratesAFileOfTheFirstSchema: a database written by the first
// schema (no queue.batch) opens, and its queued messages are received.
func TestOpenMigratesAFileOfTheFirstSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	o := order("ole", t0)
	body := orderflow.EncodeMessage(orderflow.Message{OrderID: o.ID})
	for _, q := range []string{sqlite.Migrations[0], "PRAGMA user_version = 1"} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`INSERT INTO orders (id, user_id, amount, currency, status, created_at, updated_at) VALUES (?, 'ole', 100, 'USD', 'PENDING', 0, 0)`, string(o.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO queue (body, visible_at, sent_at) VALUES (?, 0, 0)`, body); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open of a first-schema file: %v", err)
	}
	defer db.Close()
	ds, err := db.WorkQueue().Receive(ctx(t), 10, 0)
	if err != nil || len(ds) != 1 || ds[0].OrderID != o.ID {
		t.Fatalf("Receive = %+v, %v; want the old message", ds, err)
	}
	if got, err := db.GetOrder(ctx(t), o.ID); err != nil || got.Status != orderflow.StatusProcessing {
		t.Fatalf("old order after the receive = %+v, %v; want it started", got, err)
	}
	accept(t, db, order("ole", t0.Add(time.Second)), orderflow.IdempotencyKey{})
	if got := depth(t, db); got.Visible != 1 || got.InFlight != 1 {
		t.Errorf("depth = %+v, want one visible (the new order) and one in flight", got)
	}
}

// TestWALIsRestartedInPlaceBelowItsSizeLimit: under a steady stream of
// commits the WAL is written again from its start every wal_autocheckpoint
// frames, well below journal_size_limit. A COMMIT that restarts a WAL
// larger than the limit truncates the file first, which held every write
// for 16-18 ms once or twice a second when the two were 80 MB and 64 MiB.
func TestWALIsRestartedInPlaceBelowItsSizeLimit(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{})
	pragma := func(name string) int64 {
		t.Helper()
		v, err := db.WriterPragma(ctx(t), name)
		if err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	auto, page, limit := pragma("wal_autocheckpoint"), pragma("page_size"), pragma("journal_size_limit")
	frame := page + 24 // a frame is a page and its header
	if 2*auto*frame > limit {
		t.Fatalf("wal_autocheckpoint %d frames of %d bytes is more than half of journal_size_limit %d", auto, frame, limit)
	}

	if err := db.ExecOnWriter(ctx(t), `CREATE TABLE junk (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	var (
		largest  int64
		salts    = map[string]bool{}
		header   = make([]byte, 32)
		perWrite = int64(100_000)/page + 1 // overflow pages of one insert
	)
	for written := int64(0); len(salts) < 3; written += perWrite {
		if written > 4*auto {
			t.Fatalf("%d frames written, the WAL restarted %d times; want a restart every %d frames", written, len(salts)-1, auto)
		}
		if err := db.ExecOnWriter(ctx(t), `INSERT INTO junk VALUES (zeroblob(100000))`); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err == nil {
			_, err = f.ReadAt(header, 0)
		}
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, st.Size())
		salts[string(header[16:24])] = true // new salts on every restart
	}
	// The auto-checkpoint runs only when the checkpointer is not running
	// one, so the WAL may pass wal_autocheckpoint by some frames; it must
	// stay far from the size at which a restart truncates it.
	if largest > limit/2 {
		t.Errorf("the WAL grew to %d bytes, more than half of journal_size_limit %d", largest, limit)
	}
}
