package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
)

// nopIntake accepts every order without storing it.
type nopIntake struct{}

func (nopIntake) Accept(_ context.Context, o orderflow.Order, _ orderflow.IdempotencyKey) (orderflow.Order, bool, error) {
	return o, true, nil
}

func (nopIntake) GetOrder(context.Context, orderflow.OrderID) (orderflow.Order, error) {
	return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "no")
}

func (nopIntake) RequestCancel(context.Context, orderflow.OrderID, string, time.Time) (orderflow.Order, error) {
	return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "no")
}

func (nopIntake) ListOrders(context.Context, string, orderflow.OrderID, int) ([]orderflow.Order, error) {
	return nil, nil
}

// benchServer is the full handler with a JSON logger (to io.Discard), a
// real registry and real auth, as cmd/orderflow wires it.
func benchServer(b *testing.B, tp trace.TracerProvider, idsOnly bool) (http.Handler, *auth.Tokens) {
	b.Helper()
	kr, err := auth.NewKeyring(auth.Key{ID: "k1", Secret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	tokens := auth.NewTokens(kr, time.Hour, nil)
	reg := prometheus.NewRegistry()
	h := NewServer(Config{DevLogin: true, Tokens: tokens, URLs: auth.NewURLSigner(kr), RateLimit: 1 << 30},
		Deps{
			Logger:     slog.New(orderflow.LogHandler(slog.NewJSONHandler(io.Discard, nil))),
			Registerer: reg, Gatherer: reg,
			Intake: nopIntake{}, Orders: nopIntake{},
			TracerProvider: tp, TraceIDsOnly: idsOnly,
		})
	return h, tokens
}

// neverSampled is the tracer provider of a process whose exporting is off.
var neverSampled = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))

// BenchmarkCreateOrder measures POST /orders through the whole handler
// (middleware, auth, rate limit, decoding, signing, metrics, log line),
// without tracing; with exporting off (spans with ids, never recorded),
// as served and through otelhttp; and with every span recorded (to no
// exporter).
func BenchmarkCreateOrder(b *testing.B) {
	for _, tc := range []struct {
		name    string
		withKey bool
		tp      trace.TracerProvider
		idsOnly bool
	}{
		{"idempotency-key=false", false, nil, false},
		{"idempotency-key=true", true, nil, false},
		{"idempotency-key=false/tracing=off", false, neverSampled, true},
		{"idempotency-key=false/tracing=off-otelhttp", false, neverSampled, false},
		{"idempotency-key=false/tracing=sampled", false, sdktrace.NewTracerProvider(), false},
	} {
		withKey := tc.withKey
		b.Run(tc.name, func(b *testing.B) {
			h, tokens := benchServer(b, tc.tp, tc.idsOnly)
			var users atomic.Int64
			body := `{"user_id":"%s","amount":999,"currency":"USD","items":[{"sku":"SKU-1","quantity":2}]}`
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				user := "user" + strconv.FormatInt(users.Add(1), 10)
				tok, _, err := tokens.Issue(user)
				if err != nil {
					b.Error(err)
					return
				}
				payload := strings.Replace(body, "%s", user, 1)
				authz := "Bearer " + tok
				n := 0
				for pb.Next() {
					n++
					req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(payload))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", authz)
					if withKey {
						req.Header.Set("Idempotency-Key", user+"-"+strconv.Itoa(n))
					}
					rr := httptest.NewRecorder()
					h.ServeHTTP(rr, req)
					if rr.Code != http.StatusAccepted {
						b.Errorf("status %d: %s", rr.Code, rr.Body)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDecodeOrder measures the strict body decoder alone.
func BenchmarkDecodeOrder(b *testing.B) {
	body := []byte(`{"user_id":"u123","amount":999,"currency":"USD","items":[{"sku":"SKU-1","quantity":2}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeOrder(body, "u123"); err != nil {
			b.Fatal(err)
		}
	}
}
