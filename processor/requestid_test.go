package processor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// TestEveryAnswerCarriesARequestID holds the processor's port to the api's
// rules: every answer has an X-Request-ID (the client's if sane, else a
// new one) and every error is a problem naming it.
func TestEveryAnswerCarriesARequestID(t *testing.T) {
	var readyErr error
	h := Handler(func(context.Context) error { return readyErr }, prometheus.NewRegistry())
	requests := []struct{ method, path string }{
		{"GET", "/health"}, {"HEAD", "/health"}, {"GET", "/ready"}, {"GET", "/metrics"},
		{"GET", "/nope"}, {"POST", "/health"}, {"DELETE", "/metrics"},
	}
	ids := []struct {
		name, sent string
		echoed     bool
	}{
		{"a sane client id is echoed", "probe-1:a.b_c", true},
		{"no id gets a new one", "", false},
		{"an id with a space is replaced", "probe 1", false},
		{"a 129-character id is replaced", strings.Repeat("a", orderflow.MaxRequestIDLength+1), false},
	}
	seen := map[string]bool{}
	for _, notReady := range []bool{false, true} {
		readyErr = nil
		if notReady {
			readyErr = errors.New("queue down")
		}
		for _, r := range requests {
			for _, id := range ids {
				req := httptest.NewRequest(r.method, r.path, nil)
				if id.sent != "" {
					req.Header.Set("X-Request-ID", id.sent)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				what := r.method + " " + r.path + " (" + id.name + ")"
				got := rec.Header().Get("X-Request-ID")
				switch {
				case id.echoed && got != id.sent:
					t.Errorf("%s: X-Request-ID %q, want %q", what, got, id.sent)
				case !id.echoed && (got == id.sent || !orderflow.ValidRequestID(got) || seen[got]):
					t.Errorf("%s: X-Request-ID %q, want a fresh valid id", what, got)
				}
				seen[got] = true
				if rec.Code < 400 {
					continue
				}
				var p struct {
					Status    int    `json:"status"`
					Instance  string `json:"instance"`
					RequestID string `json:"request_id"`
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("%s: %d with Content-Type %q, want a problem", what, rec.Code, ct)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.RequestID != got || p.Instance != r.path {
					t.Errorf("%s: problem %s (%v), want status %d, instance %s and request_id %q", what, rec.Body, err, rec.Code, r.path, got)
				}
			}
		}
	}
}
