package httpapi

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced wraps h in otelhttp's server span, for a tracer provider that
// records spans (see idsOnly for one that does not), continuing the W3C
// traceparent (and baggage) a client sends, or starting a new trace. The
// span is named "HTTP <method>" at first and "<method> <route>" by
// observe once the route is known (the mux sets the pattern on a request
// that otelhttp does not see). otelhttp's own metrics are off: the
// Prometheus metrics of metrics.go are the api's.
func traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "api",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanName(r.Method) }),
	)
}

// spanName is the server span's name before the route is known; methods
// outside the known set share one name, as they share one metric label.
func spanName(method string) string {
	switch m := methodLabel(method); m {
	case http.MethodGet:
		return "HTTP GET"
	case http.MethodPost:
		return "HTTP POST"
	default:
		return "HTTP " + m
	}
}

// idsOnly starts the server span of a request when the tracer provider
// records nothing (exporting off), where spans exist only for their ids:
// the trace_id and span_id of log lines and the traceparent an accepted
// order keeps. It does what otelhttp does for such a span (continue the
// client's traceparent, start a server span) and skips what would be
// computed for nothing: otelhttp's request and response attributes, its
// response writer and body wrappers and its metrics cost 37 allocations
// and 3 KB per POST /orders (BenchmarkCreateOrder: 104 allocs/op through
// otelhttp, 75 so, 67 without tracing).
type idsOnly struct {
	tracer trace.Tracer
	prop   propagation.TraceContext
}

func newIDsOnly(tp trace.TracerProvider) *idsOnly {
	return &idsOnly{tracer: tp.Tracer("github.com/orderflow/orderflow/httpapi")}
}

// start returns ctx with the request's server span.
func (t *idsOnly) start(ctx context.Context, r *http.Request) (context.Context, trace.Span) {
	if r.Header.Get("Traceparent") != "" {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	return t.tracer.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer))
}
