package httpapi

import (
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orderflow/orderflow"
)

const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientTraceParent = "00-" + clientTraceID + "-00f067aa0ba902b7-01"
)

// The api continues a client's traceparent, recorded or not, and the
// accepted order keeps the context of the request's server span; the
// request's log line carries its ids.
func TestOrderKeepsTheRequestsTraceContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		idsOnly bool
	}{
		{"exporting: otelhttp's server span", false},
		{"exporting off: a span for its ids", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			sampler := sdktrace.ParentBased(sdktrace.AlwaysSample())
			if tc.idsOnly {
				sampler = sdktrace.NeverSample()
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(rec))
			f := newFixture(t, func(_ *Config, d *Deps) { d.TracerProvider, d.TraceIDsOnly = tp, tc.idsOnly })

			rr := f.postOrder("ada", `{"amount":100}`, "traceparent", clientTraceParent)
			if rr.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rr.Code, rr.Body)
			}
			var o orderflow.Order
			for _, stored := range f.store.orders {
				o = stored
			}
			sc := orderflow.SpanContextOf(o.TraceParent)
			if sc.TraceID().String() != clientTraceID || sc.SpanID().String() == "00f067aa0ba902b7" {
				t.Errorf("order traceparent %q, want the client's trace with the api's span", o.TraceParent)
			}
			lines := f.logs.Messages("http request")
			if len(lines) != 1 || lines[0]["trace_id"] != clientTraceID || lines[0]["span_id"] != sc.SpanID().String() {
				t.Errorf("request log lines %v, want one with trace_id %s and span_id %s", lines, clientTraceID, sc.SpanID())
			}

			spans := rec.Ended()
			if tc.idsOnly {
				if len(spans) != 0 {
					t.Errorf("%d spans recorded with exporting off, want none", len(spans))
				}
				return
			}
			if len(spans) != 1 || spans[0].Name() != "POST /orders" || spans[0].SpanContext().SpanID() != sc.SpanID() {
				t.Errorf("recorded %v, want the server span POST /orders whose context the order keeps", spans)
			}
		})
	}
}
