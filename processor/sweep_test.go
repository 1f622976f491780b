package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/logtest"
)

// pendingFake answers SweepPending with the batches given, one per call,
// then with none; err, if set, comes with the batch of that call.
type pendingFake struct {
	mu      sync.Mutex
	batches [][]orderflow.Order
	errs    map[int]error // by call, from 1
	calls   []time.Time   // the before of each call
	limits  []int
	called  chan int // if not nil, gets the number of each call as it starts
}

func (f *pendingFake) SweepPending(ctx context.Context, before time.Time, limit int) ([]orderflow.Order, error) {
	f.mu.Lock()
	f.calls = append(f.calls, before)
	f.limits = append(f.limits, limit)
	n := len(f.calls)
	var b []orderflow.Order
	if len(f.batches) > 0 {
		b, f.batches = f.batches[0], f.batches[1:]
	}
	err := f.errs[n]
	f.mu.Unlock()
	if f.called != nil {
		f.called <- n
	}
	return b, err
}

// senderFake records what is sent; fail, if set, fails every Send.
type senderFake struct {
	mu   sync.Mutex
	sent []orderflow.Message
	fail error
}

func (f *senderFake) Send(ctx context.Context, msgs ...orderflow.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, msgs...)
	return nil
}

func (f *senderFake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func pendingOrders(n int) []orderflow.Order {
	orders := make([]orderflow.Order, n)
	for i := range orders {
		at := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC)
		orders[i] = orderflow.Order{ID: orderflow.NewOrderID(at), RequestID: fmt.Sprintf("req-%d", i), Status: orderflow.StatusPending, CreatedAt: at,
			TraceParent: fmt.Sprintf("00-0af7651916cd43dd8448eb211c8031%02x-b7ad6b7169203331-01", i)}
	}
	return orders
}

func TestSweeperInterval(t *testing.T) {
	tests := []struct {
		name string
		cfg  SweeperConfig
		want time.Duration
	}{
		{"a quarter of the sweep age", SweeperConfig{After: 8 * time.Second}, 2 * time.Second},
		{"at least a second", SweeperConfig{After: time.Second}, time.Second},
		{"at most a minute", SweeperConfig{After: time.Hour}, time.Minute},
		{"an interval given is kept", SweeperConfig{After: time.Hour, Interval: 3 * time.Millisecond}, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewSweeper(tt.cfg, &pendingFake{}, &senderFake{}, slog.New(slog.DiscardHandler), time.Now).cfg.Interval; got != tt.want {
				t.Errorf("interval %v, want %v", got, tt.want)
			}
		})
	}
}

// Sweep re-sends the message of each order PENDING since before now minus
// After, with its request id, and warns about each.
func TestSweepResendsOldPendingOrders(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	orders := pendingOrders(3)
	store := &pendingFake{batches: [][]orderflow.Order{orders}}
	queue := &senderFake{}
	var logs logtest.Buffer
	sw := NewSweeper(SweeperConfig{After: 5 * time.Minute}, store, queue, slog.New(orderflow.LogHandler(slog.NewJSONHandler(&logs, nil))), func() time.Time { return now })
	n, err := sw.Sweep(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("Sweep: %d, %v; want 3 orders", n, err)
	}
	if want := now.Add(-5 * time.Minute); len(store.calls) != 1 || !store.calls[0].Equal(want) || store.limits[0] != sweepBatch {
		t.Errorf("SweepPending calls %v limits %v, want one before %v, limit %d", store.calls, store.limits, want, sweepBatch)
	}
	var want []orderflow.Message
	for _, o := range orders {
		want = append(want, orderflow.Message{OrderID: o.ID, RequestID: o.RequestID, TraceParent: o.TraceParent})
	}
	if d := cmp.Diff(want, queue.sent); d != "" {
		t.Errorf("sent (-want +got):\n%s", d)
	}
	if got := logs.Messages("order still PENDING; sending its message again"); len(got) != 3 || got[0]["order_id"] != string(orders[0].ID) ||
		got[0]["trace_id"] != "0af7651916cd43dd8448eb211c803100" {
		t.Errorf("warnings %v, want one per order naming it and its trace", got)
	}
	if n, err := sw.Sweep(context.Background()); err != nil || n != 0 || queue.count() != 3 {
		t.Errorf("Sweep with nothing pending: %d, %v, %d sent; want 0, nothing sent", n, err, queue.count())
	}
}

func TestSweepErrors(t *testing.T) {
	down := orderflow.Unavailable(errors.New("injected"), "down")
	t.Run("a search that fails part way still re-sends what it found", func(t *testing.T) {
		store := &pendingFake{batches: [][]orderflow.Order{pendingOrders(2)}, errs: map[int]error{1: down}}
		queue := &senderFake{}
		sw := NewSweeper(SweeperConfig{After: time.Minute}, store, queue, slog.New(slog.DiscardHandler), time.Now)
		if n, err := sw.Sweep(context.Background()); n != 2 || !errors.Is(err, down) || queue.count() != 2 {
			t.Errorf("Sweep: %d, %v, %d sent; want 2 found, the error, 2 sent", n, err, queue.count())
		}
	})
	t.Run("a failed send is returned", func(t *testing.T) {
		store := &pendingFake{batches: [][]orderflow.Order{pendingOrders(2)}}
		sw := NewSweeper(SweeperConfig{After: time.Minute}, store, &senderFake{fail: down}, slog.New(slog.DiscardHandler), time.Now)
		if n, err := sw.Sweep(context.Background()); n != 2 || !errors.Is(err, down) {
			t.Errorf("Sweep: %d, %v; want 2 found and the send's error", n, err)
		}
	})
}

// Run sweeps at each tick, batch after batch while they come back full,
// logs a failed sweep and carries on, and returns nil when ctx ends.
func TestSweeperRun(t *testing.T) {
	store := &pendingFake{
		batches: [][]orderflow.Order{pendingOrders(sweepBatch), pendingOrders(3), nil, pendingOrders(1)},
		errs:    map[int]error{3: orderflow.Unavailable(errors.New("injected"), "down")},
		called:  make(chan int),
	}
	queue := &senderFake{}
	var logs logtest.Buffer
	sw := NewSweeper(SweeperConfig{After: time.Minute}, store, queue, slog.New(slog.NewJSONHandler(&logs, nil)), time.Now)
	ticks := make(chan time.Time)
	stopped := make(chan struct{})
	sw.ticks = func(d time.Duration) (<-chan time.Time, func()) { return ticks, func() { close(stopped) } }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()

	// Run takes a tick only while it waits for one, and each search waits
	// until the test takes its number: the two steps happen in the order
	// the test asks for them, or the test times out.
	step := func(what string, c <-chan int, tick chan<- time.Time, want int) {
		t.Helper()
		select {
		case tick <- time.Now():
		case n := <-c:
			if n != want {
				t.Fatalf("%s: search %d, want search %d", what, n, want)
			}
		case err := <-done:
			t.Fatalf("%s: Run returned %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing happened within 10s", what)
		}
	}
	tick := func(what string) { t.Helper(); step(what, nil, ticks, 0) }
	search := func(what string, n int) { t.Helper(); step(what, store.called, nil, n) }

	tick("first tick")
	search("first batch, full", 1)
	search("the next batch at once", 2)
	tick("second tick, taken after the second batch came back short") // a third search would have blocked it
	search("the failing search", 3)
	tick("third tick, after the failure")
	search("the search after the failure", 4)
	tick("fourth tick")
	search("a search at every tick", 5)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after ctx ended: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of ctx ending")
	}
	if sent := queue.count(); sent != sweepBatch+4 {
		t.Errorf("sent %d messages, want %d", sent, sweepBatch+4)
	}
	if got := logs.Messages("sweep of pending orders"); len(got) != 1 {
		t.Errorf("logged %d failed sweeps, want 1: %s", len(got), logs.String())
	}
	select {
	case <-stopped:
	default:
		t.Error("Run did not stop its ticker")
	}
}

// Run sweeps on its own ticker, one search per tick when batches come back
// short.
func TestSweeperRunTicks(t *testing.T) {
	store := &pendingFake{called: make(chan int)}
	sw := NewSweeper(SweeperConfig{After: time.Minute, Interval: time.Millisecond}, store, &senderFake{}, slog.New(slog.DiscardHandler), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	for want := 1; want <= 3; want++ {
		select {
		case n := <-store.called:
			if n != want {
				t.Fatalf("search %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no search %d within 10s of 1ms ticks", want)
		}
	}
	cancel()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after ctx ended: %v, want nil", err)
			}
			return
		case <-store.called: // a tick that came with the cancel
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of ctx ending")
		}
	}
}
