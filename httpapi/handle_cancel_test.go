package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

func TestCancelOrder(t *testing.T) {
	f := newFixture(t)
	put := func(user string, st orderflow.Status) orderflow.Order {
		o := orderflow.Order{ID: f.nextID(), UserID: user, Amount: 10, Currency: "USD", Status: st, CreatedAt: t0, UpdatedAt: t0}
		f.store.put(o)
		return o
	}
	cancel := func(user string, id orderflow.OrderID) *httptest.ResponseRecorder {
		req := request(http.MethodPost, "/orders/"+string(id)+"/cancel", "")
		if user != "" {
			req.Header.Set("Authorization", "Bearer "+f.token(user))
		}
		if user == "" || !id.Valid() {
			req = openapitest.Invalid(req)
		}
		return f.do(req)
	}
	cancelled := func() float64 { return testutil.ToFloat64(f.s.metrics.cancelled) }
	now := t0.Add(time.Minute)
	f.clock.Advance(time.Minute)

	t.Run("a PENDING order is cancelled at once: 200, counted once", func(t *testing.T) {
		o := put("alice", orderflow.StatusPending)
		before := cancelled()
		rr := cancel("alice", o.ID)
		if rr.Code != http.StatusOK {
			t.Fatalf("status %d, want 200: %s", rr.Code, rr.Body)
		}
		var v OrderView
		decode(t, rr, &v)
		c := v.Cancellation
		if v.Status != orderflow.StatusCancelled || c == nil || c.RequestedBy != "alice" || !c.RequestedAt.Equal(now) ||
			c.CancelledAt == nil || !c.CancelledAt.Equal(now) || c.Refunded || v.StatusURL == "" {
			t.Errorf("got %+v with cancellation %+v; want CANCELLED by alice at %v, not refunded", v, c, now)
		}
		if n := cancelled() - before; n != 1 {
			t.Errorf("orders_processed_total{status=cancelled} rose by %v, want 1", n)
		}
		logged := 0
		for _, l := range f.logs.Messages("order transition") {
			if l["order_id"] == string(o.ID) && l["from"] == "PENDING" && l["to"] == "CANCELLED" && l["user_id"] == "alice" {
				logged++
			}
		}
		if logged != 1 {
			t.Errorf("%d transition lines PENDING→CANCELLED with the order and user ids, want 1", logged)
		}
		t.Run("a second cancel is 200 with the same document, not counted again", func(t *testing.T) {
			again := cancel("alice", o.ID)
			if again.Code != http.StatusOK || again.Body.String() != rr.Body.String() {
				t.Errorf("second cancel: %d %s; want 200 %s", again.Code, again.Body, rr.Body)
			}
			if n := cancelled() - before; n != 1 {
				t.Errorf("orders_processed_total{status=cancelled} rose by %v, want 1", n)
			}
		})
	})
	t.Run("a PROCESSING order gets the request recorded: 202 with Retry-After", func(t *testing.T) {
		o := put("alice", orderflow.StatusProcessing)
		before := cancelled()
		rr := cancel("alice", o.ID)
		if rr.Code != http.StatusAccepted || rr.Header().Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q; want 202 with Retry-After", rr.Code, rr.Header().Get("Retry-After"))
		}
		var v OrderView
		decode(t, rr, &v)
		if v.Status != orderflow.StatusProcessing || v.Cancellation == nil || v.Cancellation.CancelledAt != nil {
			t.Errorf("got %s with %+v; want PROCESSING, requested, not yet cancelled", v.Status, v.Cancellation)
		}
		if n := cancelled() - before; n != 0 {
			t.Errorf("the api counted %v cancelled orders, want 0 (the processor ends it)", n)
		}
		if again := cancel("alice", o.ID); again.Code != http.StatusAccepted {
			t.Errorf("second cancel of an order in work: %d, want 202", again.Code)
		}
	})
	for _, st := range []orderflow.Status{orderflow.StatusCompleted, orderflow.StatusRejected, orderflow.StatusFailed} {
		t.Run("a "+string(st)+" order is 409 order-final", func(t *testing.T) {
			o := put("alice", st)
			rr := cancel("alice", o.ID)
			if rr.Code != http.StatusConflict {
				t.Fatalf("status %d, want 409", rr.Code)
			}
			if p := problemOf(t, rr); p.Type != problemTypeBase+"order-final" {
				t.Errorf("problem type %q, want order-final", p.Type)
			}
			if got := f.store.orders[o.ID]; got.Status != st || got.Cancellation != nil {
				t.Errorf("stored %s %+v; want it unchanged", got.Status, got.Cancellation)
			}
		})
	}
	t.Run("an order that became final between the read and the write is 409", func(t *testing.T) {
		o := put("alice", orderflow.StatusProcessing)
		racy := &finishingStore{fakeStore: f.store, id: o.ID}
		g := newFixture(t, func(_ *Config, d *Deps) { d.Orders = racy })
		g.store = f.store
		req := request(http.MethodPost, "/orders/"+string(o.ID)+"/cancel", "")
		req.Header.Set("Authorization", "Bearer "+g.token("alice"))
		if rr := g.do(req); rr.Code != http.StatusConflict || problemOf(t, rr).Type != problemTypeBase+"order-final" {
			t.Errorf("status %d, want 409 order-final", rr.Code)
		}
	})
	t.Run("another user's order is 404 like a missing one, and unchanged", func(t *testing.T) {
		o := put("bob", orderflow.StatusPending)
		other, missing := cancel("alice", o.ID), cancel("alice", orderflow.NewOrderID(t0))
		if other.Code != 404 || missing.Code != 404 {
			t.Fatalf("statuses %d, %d; want 404, 404", other.Code, missing.Code)
		}
		if got := f.store.orders[o.ID]; got.Status != orderflow.StatusPending || got.Cancellation != nil {
			t.Errorf("bob's order became %s %+v", got.Status, got.Cancellation)
		}
	})
	t.Run("a malformed id is 404, no token 401", func(t *testing.T) {
		if rr := cancel("alice", "not-an-id"); rr.Code != 404 {
			t.Errorf("status %d, want 404", rr.Code)
		}
		if rr := cancel("", put("alice", orderflow.StatusPending).ID); rr.Code != 401 {
			t.Errorf("status %d, want 401", rr.Code)
		}
	})
	t.Run("an unavailable store is 503", func(t *testing.T) {
		o := put("alice", orderflow.StatusPending)
		f.store.getErr = orderflow.Unavailable(errors.New("down"), "store unreachable")
		defer func() { f.store.getErr = nil }()
		if rr := cancel("alice", o.ID); rr.Code != 503 {
			t.Errorf("status %d, want 503", rr.Code)
		}
	})
	t.Run("the status URL shows the cancellation without the user", func(t *testing.T) {
		o := put("alice", orderflow.StatusPending)
		var v OrderView
		decode(t, cancel("alice", o.ID), &v)
		rr := f.do(request(http.MethodGet, v.StatusURL, ""))
		var doc OrderView
		decode(t, rr, &doc)
		if rr.Code != 200 || doc.Status != orderflow.StatusCancelled || doc.Cancellation == nil || doc.Cancellation.RequestedBy != "" || doc.Cancellation.CancelledAt == nil {
			t.Errorf("status document %d %+v %+v; want CANCELLED with the cancellation, no requested_by", rr.Code, doc, doc.Cancellation)
		}
	})
	t.Run("cancels take nothing from the order rate limit", func(t *testing.T) {
		g := newFixture(t, func(c *Config, _ *Deps) { c.RateLimit = 1 })
		o := orderflow.Order{ID: g.nextID(), UserID: "carol", Amount: 10, Currency: "USD", Status: orderflow.StatusProcessing, CreatedAt: t0, UpdatedAt: t0}
		g.store.put(o)
		for range 3 {
			req := request(http.MethodPost, "/orders/"+string(o.ID)+"/cancel", "")
			req.Header.Set("Authorization", "Bearer "+g.token("carol"))
			if rr := g.do(req); rr.Code != http.StatusAccepted {
				t.Fatalf("cancel: %d, want 202", rr.Code)
			}
		}
		req := request(http.MethodPost, "/orders", `{"amount":100}`, "Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.token("carol"))
		if rr := g.do(req); rr.Code != http.StatusAccepted {
			t.Errorf("first order after cancels: %d, want 202 (the limit untouched)", rr.Code)
		}
	})
}

// finishingStore ends order id COMPLETED just before a cancel is recorded,
// as a processor finishing it between the handler's read and its write.
type finishingStore struct {
	*fakeStore
	id orderflow.OrderID
}

func (s *finishingStore) RequestCancel(ctx context.Context, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error) {
	s.mu.Lock()
	o := s.orders[s.id]
	o.Status = orderflow.StatusCompleted
	s.orders[s.id] = o
	s.mu.Unlock()
	return s.fakeStore.RequestCancel(ctx, id, by, at)
}
