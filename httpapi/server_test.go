package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
	"github.com/orderflow/orderflow/logtest"
)

// counterValue returns the value of the counter name with the given labels.
func counterValue(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestHealthAndReady(t *testing.T) {
	t.Run("health is 200 healthy", func(t *testing.T) {
		f := newFixture(t)
		rr := f.do(request(http.MethodGet, "/health", ""))
		if rr.Code != 200 || strings.TrimSpace(rr.Body.String()) != `{"status":"healthy"}` {
			t.Errorf("status %d body %s", rr.Code, rr.Body)
		}
	})
	t.Run("ready is 200 when the dependencies answer", func(t *testing.T) {
		f := newFixture(t, func(_ *Config, d *Deps) { d.Ready = func(context.Context) error { return nil } })
		rr := f.do(request(http.MethodGet, "/ready", ""))
		if rr.Code != 200 || strings.TrimSpace(rr.Body.String()) != `{"status":"ready"}` {
			t.Errorf("status %d body %s", rr.Code, rr.Body)
		}
	})
	for _, err := range []error{orderflow.Unavailable(errors.New("refused"), "queue unreachable"), errors.New("boom")} {
		t.Run("ready is 503 with Retry-After when a dependency fails: "+err.Error(), func(t *testing.T) {
			f := newFixture(t, func(_ *Config, d *Deps) { d.Ready = func(context.Context) error { return err } })
			rr := f.do(request(http.MethodGet, "/ready", ""))
			if rr.Code != 503 || rr.Header().Get("Retry-After") == "" {
				t.Fatalf("status %d Retry-After %q", rr.Code, rr.Header().Get("Retry-After"))
			}
			p := problemOf(t, rr)
			if p.Type != problemTypeBase+"not-ready" || strings.Contains(p.Detail, "refused") || strings.Contains(p.Detail, "boom") {
				t.Errorf("problem %+v", p)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	var a accepted
	decode(t, f.postOrder("u123", `{"amount":1}`), &a)
	f.do(request(http.MethodGet, "/orders/"+a.OrderID, "", "Authorization", "Bearer "+f.token("u123")))
	f.do(request(http.MethodGet, "/no/such/thing", ""))
	f.do(request("BREW", "/orders", ""))
	rr := f.do(request(http.MethodGet, "/metrics", ""))
	if rr.Code != 200 {
		t.Fatalf("status %d", rr.Code)
	}
	body := rr.Body.String()
	for _, want := range []string{
		`http_requests_total{code="202",method="POST",route="/orders"} 1`,
		`http_requests_total{code="200",method="GET",route="/orders/{id}"} 1`,
		`http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`http_request_duration_seconds_count{method="POST",route="/orders"} 1`,
		`orders_accepted_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, a.OrderID) || strings.Contains(body, "/no/such/thing") {
		t.Error("a raw path became a label")
	}
}

func TestMetricsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	share := func(_ *Config, d *Deps) { d.Registerer, d.Gatherer = reg, nil }
	a, b := newFixture(t, share), newFixture(t, share)
	a.postOrder("u123", `{"amount":1}`)
	b.postOrder("u123", `{"amount":1}`)
	if got := counterValue(t, reg, "orders_accepted_total", nil); got != 2 {
		t.Errorf("orders_accepted_total = %v, want 2 from two servers on one registry", got)
	}
	if f := newFixture(t, func(_ *Config, d *Deps) { d.Registerer, d.Gatherer = nil, nil }); f.do(request(http.MethodGet, "/metrics", "")).Code != 200 {
		t.Error("no registry given: /metrics does not answer")
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	t.Run("an unknown route is a 404 problem", func(t *testing.T) {
		rr := f.do(request(http.MethodGet, "/nope", ""))
		if rr.Code != 404 {
			t.Fatalf("status %d", rr.Code)
		}
		if p := problemOf(t, rr); p.Type != problemTypeBase+"not-found" || p.Instance != "/nope" {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("a wrong method is a 405 problem with Allow", func(t *testing.T) {
		rr := f.do(request(http.MethodDelete, "/orders", ""))
		if rr.Code != 405 {
			t.Fatalf("status %d", rr.Code)
		}
		if allow := rr.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow = %q, want GET and POST", allow)
		}
		if p := problemOf(t, rr); p.Type != problemTypeBase+"method-not-allowed" {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("HEAD of an unknown route has no body", func(t *testing.T) {
		rr := f.do(request(http.MethodHead, "/nope", ""))
		if rr.Code != 404 || rr.Body.Len() != 0 {
			t.Errorf("status %d, %d body bytes", rr.Code, rr.Body.Len())
		}
	})
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"a sane client id is echoed", "abc-123_X.y:z", true},
		{"a 128-character id is echoed", strings.Repeat("a", 128), true},
		{"a missing id is generated", "", false},
		{"an id with a space is replaced", "abc 123", false},
		{"an id with a newline-like character is replaced", "abc\u00e9", false},
		{"a 129-character id is replaced", strings.Repeat("a", 129), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A documented route, so that f.do holds the exchange to
			// openapi.json: an id the server replaces is not refused.
			for _, path := range []string{"/health", "/nope"} {
				req := request(http.MethodGet, path, "")
				if tt.sent != "" {
					req.Header.Set("X-Request-ID", tt.sent)
				}
				rr := f.do(req)
				got := rr.Header().Get("X-Request-ID")
				if tt.echoed && got != tt.sent {
					t.Errorf("GET %s: X-Request-ID = %q, want %q", path, got, tt.sent)
				}
				if !tt.echoed && (got == tt.sent || !orderflow.ValidRequestID(got) || seen[got]) {
					t.Errorf("GET %s: X-Request-ID = %q, want a fresh valid id", path, got)
				}
				seen[got] = true
				if rr.Code != http.StatusOK {
					if p := problemOf(t, rr); p.RequestID != got {
						t.Errorf("GET %s: problem request_id %q, want %q", path, p.RequestID, got)
					}
				}
			}
		})
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	targets := []*http.Request{
		request(http.MethodGet, "/health", ""),
		request(http.MethodGet, "/nope", ""),
		openapitest.Invalid(request(http.MethodPost, "/orders", `{"amount":1}`, "Content-Type", "application/json")), // no token
		request(http.MethodPost, "/orders", `{"amount":1}`, "Content-Type", "application/json", "Authorization", "Bearer "+f.token("u")),
		request(http.MethodGet, "/openapi.json", ""),
		request(http.MethodGet, "/docs", ""),
		request(http.MethodGet, "/redoc", ""),
		request(http.MethodGet, "/docs/swagger-ui.css", ""),
	}
	for _, req := range targets {
		rr := f.do(req)
		h := rr.Header()
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s %s: %s = %q, want %q", req.Method, req.URL.Path, k, got, want)
			}
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s %s: CSP %q", req.Method, req.URL.Path, csp)
		}
		if h.Get("X-Request-ID") == "" || h.Get("Cache-Control") == "" {
			t.Errorf("%s %s: X-Request-ID %q Cache-Control %q", req.Method, req.URL.Path, h.Get("X-Request-ID"), h.Get("Cache-Control"))
		}
	}
	if got := f.do(request(http.MethodGet, "/health", "")).Header().Get("Content-Security-Policy"); got != cspAPI {
		t.Errorf("JSON CSP = %q, want %q", got, cspAPI)
	}
}

func TestPanicIsA500Problem(t *testing.T) {
	f := newFixture(t)
	f.store.onAccept = func(context.Context, orderflow.Order) error { panic("kaboom") }
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 500 {
		t.Fatalf("status %d", rr.Code)
	}
	p := problemOf(t, rr)
	if p.Type != problemTypeBase+"internal-error" || strings.Contains(p.Detail, "kaboom") {
		t.Errorf("problem %+v", p)
	}
	if rr.Header().Get("Location") != "" {
		t.Error("500 carries a Location")
	}
	logged := false
	for _, l := range f.logs.Records(t) {
		if l["msg"] == "handler panicked" && l["panic"] == "kaboom" && l["request_id"] == p.RequestID && l["stack"] != nil {
			logged = true
		}
	}
	if !logged {
		t.Errorf("panic not logged with request id and stack:\n%s", f.logs)
	}
}

func TestPanicAfterTheHeadersIsLogged(t *testing.T) {
	f := newFixture(t)
	h := f.s.observe(f.s.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic("late")
	})))
	rr := httptestRecorder()
	h.ServeHTTP(rr, request(http.MethodGet, "/x", ""))
	if rr.Code != 200 || !strings.Contains(f.logs.String(), `"panic":"late"`) {
		t.Errorf("status %d, logs %s", rr.Code, f.logs)
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler passed through", v)
		}
	}()
	f.s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })).
		ServeHTTP(httptestRecorder(), request(http.MethodGet, "/x", ""))
}

// The probes and scrapes log at DEBUG, unless they answer a server error:
// at INFO a busy cluster's logs would be mostly kubelets and Prometheus.
func TestProbesLogAtDebug(t *testing.T) {
	var ready error
	levels := func(level slog.Level) map[string][]any {
		var logs logtest.Buffer
		f := newFixture(t, func(c *Config, d *Deps) {
			d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level}))
			d.Ready = func(context.Context) error { return ready }
		})
		ready = nil
		for _, p := range []string{"/health", "/ready", "/metrics", "/openapi.json"} {
			f.do(request(http.MethodGet, p, ""))
		}
		ready = errors.New("queue unreachable")
		f.do(request(http.MethodGet, "/ready", ""))
		got := map[string][]any{}
		for _, l := range logs.Messages("http request") {
			got[l["level"].(string)] = append(got[l["level"].(string)], fmt.Sprint(l["route"], " ", l["status"]))
		}
		return got
	}
	if got, want := levels(slog.LevelInfo), (map[string][]any{"INFO": {"/openapi.json 200", "/ready 503"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("at INFO: logged %v, want %v", got, want)
	}
	got := levels(slog.LevelDebug)
	if want := []any{"/health 200", "/ready 200", "/metrics 200"}; !reflect.DeepEqual(got["DEBUG"], want) {
		t.Errorf("at DEBUG: logged %v at DEBUG, want %v", got, want)
	}
}

func TestOneLogLinePerRequest(t *testing.T) {
	f := newFixture(t)
	f.postOrder("u123", `{"amount":1}`, "X-Request-ID", "rid-1")
	f.do(request(http.MethodGet, "/openapi.json", "", "X-Request-ID", "rid-2"))
	lines := f.logs.Records(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), f.logs)
	}
	l := lines[0]
	want := map[string]any{"msg": "http request", "method": "POST", "route": "/orders", "status": float64(202), "request_id": "rid-1", "user_id": "u123"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	if _, ok := l["duration_ms"]; !ok {
		t.Error("log line lacks duration_ms")
	}
	if b, _ := l["bytes"].(float64); b <= 0 {
		t.Errorf("log bytes = %v", l["bytes"])
	}
}

func TestNewServerRequiresItsDependencies(t *testing.T) {
	f := newFixture(t)
	good := func() (Config, Deps) {
		return Config{DevLogin: true, Tokens: f.tokens, URLs: f.urls}, Deps{Intake: f.store, Orders: f.store}
	}
	tests := []struct {
		name   string
		break_ func(*Config, *Deps)
	}{
		{"tokens are required", func(c *Config, _ *Deps) { c.Tokens = nil }},
		{"the URL signer is required", func(c *Config, _ *Deps) { c.URLs = nil }},
		{"users are required without dev login", func(c *Config, _ *Deps) { c.DevLogin = false }},
		{"intake is required", func(_ *Config, d *Deps) { d.Intake = nil }},
		{"orders are required", func(_ *Config, d *Deps) { d.Orders = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, d := good()
			tt.break_(&c, &d)
			defer func() {
				if recover() == nil {
					t.Error("NewServer did not panic")
				}
			}()
			NewServer(c, d)
		})
	}
	c, d := good()
	if NewServer(c, d) == nil {
		t.Error("NewServer with defaults returned nil")
	}
}

func TestNewHTTPServerBoundsSlowClients(t *testing.T) {
	s := NewHTTPServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 15*time.Second || s.WriteTimeout != 30*time.Second ||
		s.IdleTimeout != 120*time.Second || s.MaxHeaderBytes != 64<<10 || s.Addr != ":0" {
		t.Errorf("server %+v", s)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestVerifiedTokensAreRememberedBriefly(t *testing.T) {
	f := newFixture(t)
	tok := f.token("u123")
	get := func() int {
		return f.do(request(http.MethodGet, "/orders", "", "Authorization", "Bearer "+tok)).Code
	}
	if code := get(); code != 200 {
		t.Fatalf("fresh token: %d", code)
	}
	if _, ok := f.s.tokens.get(tok, f.clock.Now()); !ok {
		t.Error("a verified token was not remembered")
	}
	f.clock.Advance(2 * time.Hour) // past the token's expiry and the cache's
	if code := get(); code != 401 {
		t.Errorf("expired token after the cache lifetime: %d, want 401", code)
	}
	for i := range tokenCacheSize + 1 {
		f.s.tokens.put(strconv.Itoa(i), "u", f.clock.Now(), f.clock.Now().Add(time.Hour))
	}
	if n := len(f.s.tokens.m); n > tokenCacheSize {
		t.Errorf("cache holds %d tokens, want at most %d", n, tokenCacheSize)
	}
}
