package processor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// flakyStore fails the first call of chosen operations with EUnavailable.
type flakyStore struct {
	*fakeStore
	mu   sync.Mutex
	fail map[string]int // "reserve", "release", "transition:STATUS" → failures left
}

func (s *flakyStore) trip(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[op] > 0 {
		s.fail[op]--
		return orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	}
	return nil
}

func (s *flakyStore) Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error) {
	if err := s.trip("transition:" + string(t.To)); err != nil {
		return orderflow.Order{}, err
	}
	return s.fakeStore.Transition(ctx, t)
}

func (s *flakyStore) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	if err := s.trip("transition:" + string(orderflow.StatusProcessing)); err != nil {
		return orderflow.Order{}, err
	}
	return s.fakeStore.StartOrder(ctx, id, at)
}

func (s *flakyStore) Reserve(ctx context.Context, id orderflow.OrderID, its []orderflow.Item) (*orderflow.Failure, error) {
	if err := s.trip("reserve"); err != nil {
		return nil, err
	}
	return s.fakeStore.Reserve(ctx, id, its)
}

func (s *flakyStore) Release(ctx context.Context, id orderflow.OrderID) error {
	if err := s.trip("release"); err != nil {
		return err
	}
	return s.fakeStore.Release(ctx, id)
}

// flakyFraud fails its first n checks.
type flakyFraud struct {
	next Fraud
	mu   sync.Mutex
	n    int
}

func (f *flakyFraud) Check(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return nil, errors.New("fraud service timeout")
	}
	return f.next.Check(ctx, o)
}

func TestTransientErrorsInEveryStepAreRetried(t *testing.T) {
	tests := []struct {
		name   string
		fail   string
		amount int64
		want   orderflow.Status
	}{
		{"the store failing to start the order", "transition:PROCESSING", 1000, orderflow.StatusCompleted},
		{"the inventory failing to reserve", "reserve", 1000, orderflow.StatusCompleted},
		{"the fraud check failing", "fraud", 1000, orderflow.StatusCompleted},
		{"the store failing to complete", "transition:COMPLETED", 1000, orderflow.StatusCompleted},
		{"the inventory failing to release for a rejection", "release", 500_000, orderflow.StatusRejected},
		{"the store failing to reject", "transition:REJECTED", 1002, orderflow.StatusRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) {
				fs := &flakyStore{fakeStore: h.s, fail: map[string]int{tt.fail: 1}}
				h.deps.Store, h.deps.Inventory = fs, fs
				h.deps.Fraud = &flakyFraud{next: h.deps.Fraud, n: map[bool]int{true: 1}[tt.fail == "fraud"]}
			})
			h.start()
			o := h.order(tt.amount, items("widget", 1)...)
			h.waitDeleted(h.send(o))
			if got := h.s.order(o.ID).Status; got != tt.want {
				t.Errorf("status = %s, want %s", got, tt.want)
			}
			if n := h.processed(statusSuccess) + h.processed(statusRejected); n != 1 {
				t.Errorf("orders processed = %v, want 1", n)
			}
			if n := h.ledger.count(); n > 1 {
				t.Errorf("charges = %d, want at most 1", n)
			}
			wantStock := 99
			if tt.want == orderflow.StatusRejected {
				wantStock = 100
			}
			if n := h.s.stockOf("widget"); n != wantStock {
				t.Errorf("widget stock = %d, want %d", n, wantStock)
			}
			if len(h.logs.Messages("transient error; will retry")) != 1 {
				t.Errorf("want one logged retry")
			}
		})
	}
}

// staleStore reads every order with status as its status, like an
// eventually consistent read that lags the writes.
type staleStore struct {
	*fakeStore
	status orderflow.Status
}

func (s staleStore) GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	o, err := s.fakeStore.GetOrder(ctx, id)
	o.Status = s.status
	return o, err
}

func TestStaleReadsAreResolvedByConditionalWrites(t *testing.T) {
	setStatus := func(h *harness, id orderflow.OrderID, st orderflow.Status) {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		o := h.s.orders[id]
		o.Status = st
		h.s.orders[id] = o
	}
	t.Run("an order read as PENDING but already PROCESSING is continued", func(t *testing.T) {
		h := newHarness(t, func(h *harness) { h.deps.Store = staleStore{h.s, orderflow.StatusPending} })
		o := h.order(1000)
		setStatus(h, o.ID, orderflow.StatusProcessing)
		h.start()
		h.waitDeleted(h.send(o))
		if got := h.s.order(o.ID).Status; got != orderflow.StatusCompleted {
			t.Errorf("status = %s, want COMPLETED", got)
		}
	})
	t.Run("an order read as PENDING but already COMPLETED is deleted without a charge", func(t *testing.T) {
		h := newHarness(t, func(h *harness) { h.deps.Store = staleStore{h.s, orderflow.StatusPending} })
		o := h.order(1000)
		setStatus(h, o.ID, orderflow.StatusCompleted)
		h.start()
		h.waitDeleted(h.send(o))
		if n := h.ledger.count(); n != 0 {
			t.Errorf("charges = %d, want 0", n)
		}
		if n := h.processed(statusSuccess); n != 0 {
			t.Errorf("success = %v, want 0 (another worker finished it)", n)
		}
	})
	// The start is a conditional write, never a read: an order whose start
	// cannot be written was not read, may have been paid, and is left for
	// the dead-letter path (which asks the ledger) untouched.
	t.Run("an order whose start cannot be written is left for the DLQ unchanged on the last attempt", func(t *testing.T) {
		h := newHarness(t, func(h *harness) {
			h.deps.Store = staleStore{h.s, orderflow.StatusPending}
			h.s.failTo[orderflow.StatusProcessing] = true
		})
		o := h.order(1000)
		setStatus(h, o.ID, orderflow.StatusProcessing)
		h.start()
		h.waitDead(h.send(o))
		if got := h.s.order(o.ID); got.Status != orderflow.StatusProcessing || got.Failure != nil {
			t.Errorf("order = %s %+v, want it PROCESSING, left to the dead-letter path", got.Status, got.Failure)
		}
		if n := len(h.logs.Messages("giving up on an order that could not be read; left for the dead-letter queue")); n != 1 {
			t.Errorf("give-ups logged = %d, want 1", n)
		}
	})
}

func TestRequestIDComesFromTheOrderWhenTheMessageHasNone(t *testing.T) {
	h := newHarness(t)
	h.start()
	o := h.order(1000)
	h.waitDeleted(h.q.SendRaw(orderflow.EncodeMessage(orderflow.Message{OrderID: o.ID})))
	for _, l := range h.logs.Messages("order transition") {
		if l["request_id"] != o.RequestID {
			t.Errorf("request_id = %v, want %s", l["request_id"], o.RequestID)
		}
	}
}

func TestFailureDetail(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a store error shows its detail, not its cause", orderflow.Unavailable(errors.New("dial 10.0.0.1"), "store unreachable"), "store unreachable"},
		{"a gateway error shows its text", errors.New("gateway timeout"), "gateway timeout"},
		{"a long text is cut", errors.New(strings.Repeat("x", 400)), strings.Repeat("x", 300) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureDetail(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVisibilityErrorsAreLoggedNotFatal(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.q.policyVT = 3 * time.Millisecond })
	h.p.setVisibility(context.Background(), "stale#1", time.Second)
	if len(h.logs.Messages("change visibility")) != 1 {
		t.Error("a failed visibility change was not logged")
	}
	stop := h.p.heartbeat(context.Background(), "stale#1")
	h.eventually("a failed heartbeat to be logged", func() bool { return len(h.logs.Messages("extend visibility")) > 0 })
	stop()
}
