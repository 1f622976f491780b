package httpapi

import (
	"net/http"
	"time"

	"github.com/orderflow/orderflow"
)

// handleCancelOrder serves POST /orders/{id}/cancel to the order's owner
// (another user's order is 404, as for GET): a best-effort cancel in the
// manner of AIP-151. The request is recorded in the store in one
// conditional write (orderflow.Store.RequestCancel):
//   - a PENDING order is CANCELLED at once: 200 with its document (this
//     process counts it in orders_processed_total{status="cancelled"});
//   - a PROCESSING order keeps the request for the processor, which ends
//     it at its next stage boundary: 202 with its document, the
//     cancellation requested, and Retry-After (poll the status URL);
//   - a CANCELLED order: 200, the same document (idempotent);
//   - COMPLETED, REJECTED or FAILED: 409 order-final.
//
// A cancel takes nothing from the order rate limit; the request body, if
// any, is ignored (the request has no parameters).
func (s *server) handleCancelOrder() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		user := orderflow.UserID(ctx)
		o, ok := s.ownedOrder(w, r)
		if !ok {
			return
		}
		if o.Status.Terminal() && o.Status != orderflow.StatusCancelled {
			s.orderFinal(w, r, o)
			return
		}
		at := s.now().UTC().Truncate(time.Millisecond)
		stored, err := s.orders.RequestCancel(ctx, o.ID, user, at)
		switch {
		case orderflow.ErrorCode(err) == orderflow.EConflict && stored.ID != "":
			s.orderFinal(w, r, stored)
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		if o.Status == orderflow.StatusPending && stored.Status == orderflow.StatusCancelled &&
			stored.Cancellation != nil && stored.Cancellation.RequestedAt.Equal(at) {
			s.metrics.cancelled.Inc()
			// The one line per transition, as the processor writes it.
			s.log.InfoContext(orderflow.WithOrderID(ctx, o.ID), "order transition",
				"from", string(orderflow.StatusPending), "to", string(orderflow.StatusCancelled))
		}
		base, err := s.baseURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v := newOrderView(stored, true)
		v.StatusURL, _ = s.statusURL(base, stored)
		code := http.StatusOK
		if !stored.Status.Terminal() {
			code = http.StatusAccepted
			w.Header()["Retry-After"] = s.retryPoll
		}
		writeJSON(w, r, code, contentJSON, v)
	})
}

// orderFinal answers 409 order-final for o, which ended otherwise.
func (s *server) orderFinal(w http.ResponseWriter, r *http.Request, o orderflow.Order) {
	s.problem(w, r, codeOrderFinal, "order "+string(o.ID)+" is "+string(o.Status)+" and can no longer be cancelled", nil)
}

// ownedOrder reads the order named by the path's id for its owner, or
// answers 404 (a malformed id, a missing order and another user's order
// alike, so that ids of others cannot be probed) or the store's error, and
// returns false.
func (s *server) ownedOrder(w http.ResponseWriter, r *http.Request) (orderflow.Order, bool) {
	ctx := r.Context()
	id := orderflow.OrderID(r.PathValue("id"))
	notFound := func() { s.problem(w, r, orderflow.ENotFound, "order "+string(id)+" not found", nil) }
	if !id.Valid() {
		notFound()
		return orderflow.Order{}, false
	}
	o, err := s.orders.GetOrder(ctx, id)
	switch {
	case orderflow.ErrorCode(err) == orderflow.ENotFound:
		notFound()
		return orderflow.Order{}, false
	case err != nil:
		s.fail(w, r, err)
		return orderflow.Order{}, false
	case o.UserID != orderflow.UserID(ctx):
		notFound()
		return orderflow.Order{}, false
	}
	return o, true
}
