package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
)

// untilExpiry is the time left until the verified status URL of r
// expires, by the server's clock.
func (s *server) untilExpiry(r *http.Request) time.Duration {
	secs, _ := strconv.ParseInt(r.URL.Query().Get(auth.ParamExpires), 10, 64)
	return time.Unix(secs, 0).Sub(s.now())
}

// longPoll answers If-None-Match + Prefer: wait=N for an order whose
// current document is etag: it holds the request until the document
// differs (200 with it) or N seconds pass (304).
func (s *server) longPoll(w http.ResponseWriter, r *http.Request, o orderflow.Order, changes <-chan struct{}, wait int) {
	release, code := s.streams.acquire(o.UserID)
	if code != "" {
		s.refuseHeld(w, r, code)
		return
	}
	defer release()
	h := w.Header()
	h["Preference-Applied"] = []string{"wait=" + strconv.Itoa(wait)}
	d := time.Duration(wait) * time.Second
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(d + s.cfg.StreamWriteTimeout)) // beyond the server's WriteTimeout
	timer := time.NewTimer(min(d, s.untilExpiry(r)))
	defer timer.Stop()
	etag := etagOf(o)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done: // the server stops: answer now
			w.WriteHeader(http.StatusNotModified)
			return
		case <-timer.C:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-changes:
		}
		cur, err := s.reread(r.Context(), o.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if next := etagOf(cur); next != etag {
			h["Etag"] = []string{next}
			if cur.Status.Terminal() {
				delete(h, "Retry-After")
			}
			writeBody(w, r, http.StatusOK, s.hdr.json, encodeJSON(newOrderView(cur, false)))
			return
		}
	}
}

// streamStatus answers Accept: text/event-stream: an event with the
// status document at once (unless Last-Event-ID names it), one on every
// change, a comment every StreamHeartbeat; it ends after the terminal
// document, at the URL's expiry, when the server stops, or when a write
// takes longer than StreamWriteTimeout (a slow or vanished reader).
func (s *server) streamStatus(w http.ResponseWriter, r *http.Request, o orderflow.Order, changes <-chan struct{}) {
	last := r.Header.Get("Last-Event-ID")
	if last == etagOf(o) && o.Status.Terminal() {
		// Nothing more will come: 204 tells an EventSource to stop
		// reconnecting (WHATWG HTML §9.2).
		w.WriteHeader(http.StatusNoContent)
		return
	}
	release, code := s.streams.acquire(o.UserID)
	if code != "" {
		s.refuseHeld(w, r, code)
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), s.untilExpiry(r))
	defer cancel()
	h := w.Header()
	delete(h, "Etag")
	delete(h, "Retry-After")
	h["Content-Type"] = []string{"text/event-stream"}
	h["X-Accel-Buffering"] = []string{"no"} // nginx: do not buffer the stream
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // the server's ReadTimeout would end the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead || rc.Flush() != nil {
		return // the headers go out now, even when no event does
	}
	var buf bytes.Buffer
	send := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.StreamWriteTimeout)); err != nil {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	sent := last
	if ok := s.sendStatus(&buf, o, &sent, send); !ok || o.Status.Terminal() {
		return
	}
	beat := time.NewTicker(s.cfg.StreamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-beat.C:
			if !send([]byte(":\n\n")) {
				return
			}
			continue
		case <-changes:
		}
		cur, err := s.reread(ctx, o.ID)
		if err != nil {
			return // the client reconnects with Last-Event-ID
		}
		if ok := s.sendStatus(&buf, cur, &sent, send); !ok || cur.Status.Terminal() {
			return
		}
	}
}

// sendStatus sends o as a status event unless *sent is its ETag already,
// and records it there. It reports false when the write failed.
func (s *server) sendStatus(buf *bytes.Buffer, o orderflow.Order, sent *string, send func([]byte) bool) bool {
	etag := etagOf(o)
	if etag == *sent {
		return true
	}
	buf.Reset()
	buf.WriteString("id: ")
	buf.WriteString(etag)
	buf.WriteString("\nevent: status\ndata: ")
	buf.Write(bytes.TrimRight(encodeJSON(newOrderView(o, false)), "\n"))
	buf.WriteString("\n\n")
	if !send(buf.Bytes()) {
		return false
	}
	*sent = etag
	return true
}
