package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// Paging of GET /orders.
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// handleCreateOrder serves POST /orders: rate limit, Idempotency-Key,
// strict decoding and validation, then Intake.Accept, answered with 202
// and the signed status URL. A replay (created=false) gets the same body
// (the URL's expiry counts from the order's creation) and
// Idempotent-Replayed: true.
func (s *server) handleCreateOrder() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		user := orderflow.UserID(ctx)
		now := s.now()
		h := w.Header()

		// The limit comes first, before the Idempotency-Key: every attempt
		// counts, a replay and a request that fails validation included,
		// so that a client cannot probe past it.
		d, rate, policy := s.orderLim.take(ctx, user, now)
		h["Ratelimit-Policy"] = policy
		h["Ratelimit"] = []string{rateLimitHeader(d)}
		if !d.Allowed {
			secs := strconv.FormatInt(max(1, ceilSeconds(d.RetryAfter)), 10)
			h["Retry-After"] = []string{secs}
			s.problem(w, r, codeRateLimited, "rate limit of "+strconv.Itoa(rate.Limit)+" orders per minute exceeded; retry in "+secs+" s", nil)
			return
		}
		key, err := idempotencyKey(r.Header)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		o, err := decodeOrder(body, user)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		base, err := s.baseURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}

		var ik orderflow.IdempotencyKey
		created := false // for the backlog's Done
		if key != "" {
			end, ok := s.inflight.begin(user, key)
			if !ok {
				h["Retry-After"] = []string{"1"}
				s.problem(w, r, codeInFlight, "a request with this Idempotency-Key is still being processed; retry shortly", nil)
				return
			}
			defer end()
			ik = orderflow.IdempotencyKey{UserID: user, Key: key, RequestHash: requestHash(o)}
		}
		// Shedding comes after validation, so that bad input still gets
		// its 4xx, and before the write, which is the work it saves. A
		// retry of an order accepted before (same Idempotency-Key) is
		// refused like new work while shedding: telling it apart needs the
		// store's read of the key, the kind of work being shed; once the
		// backlog is under the bound the retry gets its replay, and no
		// second order (see docs/api.md).
		if s.backlog != nil {
			n, ok := s.backlog.Admit(s.cfg.MaxBacklog)
			if !ok {
				s.overloaded(w, r, now, n)
				return
			}
			defer func() { s.backlog.Done(created) }()
		}
		o.ID = s.newID()
		o.Status = orderflow.StatusPending
		o.RequestID = orderflow.RequestID(ctx)
		o.TraceParent = orderflow.TraceParent(ctx)
		o.CreatedAt = now.UTC().Truncate(time.Millisecond) // what every store keeps exactly
		o.UpdatedAt = o.CreatedAt

		stored, isNew, err := s.intake.Accept(orderflow.WithOrderID(ctx, o.ID), o, ik)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if created = isNew; created {
			s.metrics.accepted.Inc()
			if s.backlog != nil && s.shed.on.Load() {
				n, _ := s.backlog.Current()
				s.shed.accepted(ctx, now, n)
			}
		} else {
			h["Idempotent-Replayed"] = s.hdr.replayed
		}
		s.writeAccepted(w, r, base, stored)
	})
}

// writeAccepted answers 202 for the accepted order o: its status URL in
// the body and in Location, and when to poll it.
func (s *server) writeAccepted(w http.ResponseWriter, r *http.Request, base string, o orderflow.Order) {
	statusURL, expires := s.statusURL(base, o)
	b := make([]byte, 0, 160+len(statusURL))
	b = append(b, `{"order_id":`...)
	b = appendJSONString(b, string(o.ID))
	b = append(b, `,"status":"PENDING","status_url":`...)
	b = appendJSONString(b, statusURL)
	b = append(b, `,"expires_at":"`...)
	b = expires.AppendFormat(b, time.RFC3339)
	b = append(b, "\"}\n"...)
	h := w.Header()
	h["Location"] = []string{statusURL}
	h["Retry-After"] = s.retryPoll
	writeBody(w, r, http.StatusAccepted, s.hdr.json, b)
}

// baseURL is the scheme and authority of the absolute URLs in answers to
// r: PublicURL if set, else the request's Host, else (an HTTP/1.0 request
// may have none) the address of the listener that took the connection.
// With none of them it is a 400: an answer must not carry "http:///".
func (s *server) baseURL(r *http.Request) (string, error) {
	if s.publicURL != "" {
		return s.publicURL, nil
	}
	host := r.Host
	if host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	if host == "" {
		return "", newClientError(codeBadRequest, "", "send a Host header: the answer carries an absolute status URL")
	}
	if r.TLS != nil {
		return "https://" + host, nil
	}
	return "http://" + host, nil
}

// statusURL returns the absolute signed status URL of o under base (from
// baseURL) and its expiry, which is o.CreatedAt + StatusURLTTL so that the
// URL of an order is the same every time it is computed.
func (s *server) statusURL(base string, o orderflow.Order) (string, time.Time) {
	q := s.cfg.URLs.Sign(o.ID, o.CreatedAt.Add(s.cfg.StatusURLTTL))
	exp := q.Get("exp")
	b := make([]byte, 0, 192)
	b = append(b, base...)
	b = append(b, "/orders/"...)
	b = append(b, url.PathEscape(string(o.ID))...)
	b = append(b, "/status?exp="...)
	b = append(b, url.QueryEscape(exp)...)
	b = append(b, "&kid="...)
	b = append(b, url.QueryEscape(q.Get("kid"))...)
	b = append(b, "&sig="...)
	b = append(b, url.QueryEscape(q.Get("sig"))...)
	secs, _ := strconv.ParseInt(exp, 10, 64)
	return string(b), time.Unix(secs, 0).UTC()
}

// handleGetOrder serves GET /orders/{id} to the order's owner. Another
// user's order is answered exactly like a missing one (404), so that ids
// of others cannot be probed.
func (s *server) handleGetOrder() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, ok := s.ownedOrder(w, r)
		if !ok {
			return
		}
		base, err := s.baseURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v := newOrderView(o, true)
		v.StatusURL, _ = s.statusURL(base, o)
		writeJSON(w, r, http.StatusOK, contentJSON, v)
	})
}

// handleListOrders serves GET /orders?limit=&cursor=: the user's orders,
// newest first, a page at a time. next_cursor is null on the last page.
func (s *server) handleListOrders() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		base, err := s.baseURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		q := r.URL.Query()
		limit := defaultPageSize
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil || n < 1 || n > maxPageSize || len(q["limit"]) > 1 {
				s.problem(w, r, codeBadRequest, "limit must be one integer from 1 to "+strconv.Itoa(maxPageSize), nil)
				return
			}
			limit = n
		}
		var cursor orderflow.OrderID
		if q.Has("cursor") {
			c, err := decodeCursor(q.Get("cursor"))
			if err != nil || len(q["cursor"]) > 1 {
				s.problem(w, r, codeBadRequest, "cursor must be a next_cursor returned by this API", nil)
				return
			}
			cursor = c
		}
		orders, err := s.orders.ListOrders(ctx, orderflow.UserID(ctx), cursor, limit+1)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var p OrderPage
		if len(orders) > limit {
			orders = orders[:limit]
			next := encodeCursor(orders[limit-1].ID)
			p.NextCursor = &next
		}
		p.Orders = make([]OrderView, len(orders))
		for i, o := range orders {
			p.Orders[i] = newOrderView(o, true)
			p.Orders[i].StatusURL, _ = s.statusURL(base, o)
		}
		writeJSON(w, r, http.StatusOK, contentJSON, p)
	})
}

// encodeCursor makes the opaque paging cursor of the order id (base64url
// of its 16 bytes).
func encodeCursor(id orderflow.OrderID) string {
	raw, err := hex.DecodeString(string(id))
	if err != nil {
		return base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor is the inverse of encodeCursor.
func decodeCursor(c string) (orderflow.OrderID, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(raw) != 16 {
		return "", errors.New("bad cursor")
	}
	return orderflow.OrderID(hex.EncodeToString(raw)), nil
}
