package processor

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orderflow/orderflow"
)

func TestHandlerRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "orders_processed_total", Help: "h"})
	reg.MustRegister(c)
	var readyErr error
	h := Handler(func(context.Context) error { return readyErr }, reg)

	tests := []struct {
		name        string
		method      string
		path        string
		notReady    bool
		status      int
		contentType string
		body        string
	}{
		{"health is healthy", "GET", "/health", false, 200, "application/json", `"status":"healthy"`},
		{"health is healthy even when not ready", "GET", "/health", true, 200, "application/json", `"status":"healthy"`},
		{"ready answers ready", "GET", "/ready", false, 200, "application/json", `"status":"ready"`},
		{"not ready is a 503 problem", "GET", "/ready", true, 503, "application/problem+json", `"type":"https://orderflow.dev/problems/not-ready"`},
		{"not ready says why, as the api does", "GET", "/ready", true, 503, "application/problem+json", `"detail":"not ready: store unreachable"`},
		{"metrics are exposed", "GET", "/metrics", false, 200, "text/plain", "orders_processed_total 0"},
		{"an unknown path is a 404 problem", "GET", "/nope", false, 404, "application/problem+json", `"status":404`},
		{"a POST to health is a 405 problem", "POST", "/health", false, 405, "application/problem+json", `"status":405`},
		{"HEAD of health works for probes", "HEAD", "/health", false, 200, "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readyErr = nil
			if tt.notReady {
				readyErr = orderflow.Unavailable(errors.New("dial tcp 10.0.0.1:5432: refused"), "store unreachable")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("content type = %q, want %q", ct, tt.contentType)
			}
			if !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("body = %s, want it to contain %s", rec.Body, tt.body)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.1") {
				t.Errorf("body leaks the cause: %s", rec.Body)
			}
			if tt.status == 503 && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func TestHealthBodyIsTheSpecs(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(func(context.Context) error { return nil }, prometheus.NewRegistry()).
		ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 1 || got["status"] != "healthy" {
		t.Errorf("body = %s, want {\"status\":\"healthy\"}", rec.Body)
	}
}

func TestReadyChecksQueueAndStoreAndCaches(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, func(h *harness) {
		h.deps.Now = func() time.Time { return now }
		h.cfg.ReadyTTL = 2 * time.Second
	})
	ctx := context.Background()
	if err := h.p.Ready(ctx); err != nil {
		t.Fatalf("Ready = %v, want nil", err)
	}

	h.q.mu.Lock()
	h.q.pingErr = errors.New("queue down")
	h.q.mu.Unlock()
	if err := h.p.Ready(ctx); err != nil {
		t.Errorf("within the cache time: Ready = %v, want the cached nil", err)
	}
	now = now.Add(2 * time.Second)
	if err := h.p.Ready(ctx); err == nil || !strings.Contains(err.Error(), "queue") {
		t.Errorf("after the cache time: Ready = %v, want a queue error", err)
	}

	h.q.mu.Lock()
	h.q.pingErr = nil
	h.q.mu.Unlock()
	h.s.mu.Lock()
	h.s.pingErr = errors.New("store down")
	h.s.mu.Unlock()
	now = now.Add(2 * time.Second)
	if err := h.p.Ready(ctx); err == nil || !strings.Contains(err.Error(), "store") {
		t.Errorf("Ready = %v, want a store error", err)
	}

	h.s.mu.Lock()
	h.s.pingErr = nil
	h.s.mu.Unlock()
	now = now.Add(2 * time.Second)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_ = h.p.Ready(cancelled) // a caller that gave up is not cached
	if err := h.p.Ready(ctx); err != nil {
		t.Errorf("Ready = %v, want nil once both are back", err)
	}
}

func TestQueueDepthGauge(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, func(h *harness) { h.deps.Now = func() time.Time { return now } })
	for range 3 {
		h.q.SendRaw([]byte("{}"))
	}
	h.q.take(1) // one in flight
	h.q.mu.Lock()
	h.q.dead = append(h.q.dead, &fakeMsg{id: "d1"})
	h.q.mu.Unlock()

	want := `
# HELP queue_messages Approximate messages in the queue: main counts waiting and in-flight messages, dlq the dead-lettered ones.
# TYPE queue_messages gauge
queue_messages{queue="dlq"} 1
queue_messages{queue="main"} 3
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "queue_messages"); err != nil {
		t.Error(err)
	}
	// Cached: a new message is not seen within the cache time.
	h.q.SendRaw([]byte("{}"))
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "queue_messages"); err != nil {
		t.Errorf("within the cache time: %v", err)
	}
	// A failing Depth leaves the gauge out without failing the scrape.
	now = now.Add(time.Second)
	h.q.mu.Lock()
	h.q.depthErr = errors.New("throttled")
	h.q.mu.Unlock()
	if n, err := testutil.GatherAndCount(h.reg, "queue_messages"); err != nil || n != 0 {
		t.Errorf("with a failing queue: %d series, err %v; want 0, nil", n, err)
	}
	h.q.mu.Lock()
	h.q.depthErr = nil
	h.q.mu.Unlock()
	if n, err := testutil.GatherAndCount(h.reg, "queue_messages"); err != nil || n != 2 {
		t.Errorf("after recovery: %d series, err %v; want 2, nil", n, err)
	}
}
