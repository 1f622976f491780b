package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
)

// handleOrderStatus serves the signed status URL, GET
// /orders/{id}/status?exp=&kid=&sig=. The signature is the credential: no
// token is needed. A tampered or expired URL is 403; a correctly signed URL
// of a missing order is 404. The answer has a strong ETag (If-None-Match
// gives 304), Cache-Control: no-store, and Retry-After while the order is
// not terminal. Accept: text/event-stream streams the document (see
// streamStatus); If-None-Match with Prefer: wait=N long-polls (longPoll).
func (s *server) handleOrderStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, err := s.cfg.URLs.Verify(r.PathValue("id"), r.URL.Query(), s.now())
		if err != nil {
			code, detail := codeBadSignature, "status URL signature invalid"
			if errors.Is(err, auth.ErrURLExpired) {
				code = codeURLExpired
			}
			if errors.Is(err, auth.ErrBadSignature) {
				detail = err.Error() // auth promises these messages are safe to show
			}
			s.problem(w, r, code, detail, nil)
			return
		}
		stream, wait := wantsEventStream(r), 0
		if !stream && len(r.Header["If-None-Match"]) > 0 {
			wait = preferWait(r)
		}
		var changes <-chan struct{}
		if stream || wait > 0 {
			// Before the read, so that no change after it is missed.
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			changes = s.watch(wctx, id)
		}
		o, err := s.orders.GetOrder(orderflow.WithOrderID(ctx, id), id)
		if orderflow.ErrorCode(err) == orderflow.ENotFound {
			s.problem(w, r, orderflow.ENotFound, "order "+string(id)+" not found", nil)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h := w.Header()
		etag := etagOf(o)
		h["Etag"] = []string{etag}
		if !o.Status.Terminal() {
			h["Retry-After"] = s.retryPoll
		}
		if stream {
			s.streamStatus(w, r, o, changes)
			return
		}
		if noneMatch(r.Header["If-None-Match"], etag) {
			if wait > 0 {
				s.longPoll(w, r, o, changes, wait)
				return
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeBody(w, r, http.StatusOK, s.hdr.json, encodeJSON(newOrderView(o, false)))
	})
}

// etagOf is the strong entity tag of an order's status document. The
// document changes only with a transition, which sets a new status and
// updated_at.
func etagOf(o orderflow.Order) string {
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = append(b, strings.ToLower(string(o.Status))...)
	b = append(b, '-')
	b = strconv.AppendInt(b, o.UpdatedAt.UnixNano(), 36)
	b = append(b, '"')
	return string(b)
}

// noneMatch reports whether an If-None-Match field (possibly several
// lines, each a list) matches etag under weak comparison (RFC 9110 §13.1.2).
func noneMatch(fields []string, etag string) bool {
	for _, f := range fields {
		for _, t := range strings.Split(f, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
