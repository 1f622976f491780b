package orderflow

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceParent returns the W3C traceparent of the span context carried by
// ctx, or "" if it carries none: what an order and its queue message keep
// so that the processor continues the request's trace.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c traceParentCarrier
	propagation.TraceContext{}.Inject(ctx, &c)
	return c.value
}

// ContextWithTraceParent returns ctx carrying the remote span context of
// traceparent, the parent of spans started from it. A missing or malformed
// traceparent leaves ctx as it is (a new trace starts from it).
func ContextWithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, &traceParentCarrier{value: traceparent})
}

// SpanContextOf returns the remote span context of traceparent; it is not
// valid when traceparent is empty or malformed.
func SpanContextOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), traceparent))
}

// traceParentCarrier is a propagation.TextMapCarrier that holds only the
// traceparent header: the W3C format itself stays the propagator's.
type traceParentCarrier struct{ value string }

const traceParentHeader = "traceparent"

func (c *traceParentCarrier) Get(key string) string {
	if key == traceParentHeader {
		return c.value
	}
	return ""
}

func (c *traceParentCarrier) Set(key, value string) {
	if key == traceParentHeader {
		c.value = value
	}
}

func (c *traceParentCarrier) Keys() []string { return []string{traceParentHeader} }
