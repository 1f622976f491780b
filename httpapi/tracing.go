package httpapi

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced wraps h in otelhttp's server span, continuing the W3C
// traceparent (and baggage) a client sends, or starting a new trace. The
// span is named "HTTP <method>" at first and "<method> <route>" by
// observe once the route is known (the mux sets the pattern on a request
// that otelhttp does not see). otelhttp's own metrics are off: the
// Prometheus metrics of metrics.go are the api's. Without a provider h is
// returned as it is.
func traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	if tp == nil {
		return h
	}
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
