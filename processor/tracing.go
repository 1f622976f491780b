package processor

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow"
)

// Span names of the processor (see the package documentation, Tracing).
const (
	spanProcess    = "process order"
	spanStart      = "start order"
	spanTransition = "transition"
	spanReceive    = "receive orders"
	spanDelete     = "delete messages"
	spanDeadLetter = "end dead-lettered order"
)

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/orderflow/orderflow/processor")
}

// startOrderSpan starts span name for the order of a message with
// traceparent tp: the child of the api's span that accepted the order (one
// order, one message, one parent), or the root of a new trace when the
// message carries none.
func (p *Processor) startOrderSpan(ctx context.Context, name, tp string, d orderflow.Delivery) (context.Context, trace.Span) {
	ctx = orderflow.ContextWithTraceParent(ctx, tp)
	ctx, span := p.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("orderflow.order_id", string(d.OrderID)),
			attribute.String("messaging.message.id", d.MessageID),
			attribute.Int("messaging.receive_count", d.ReceiveCount),
		)
	}
	return ctx, span
}

// startSpan starts a child span of ctx's, internal to the processor. Under
// a span that records nothing (exporting off, a trace not sampled) it
// starts none: the lines logged meanwhile carry the order's span, and an
// order's five spans cost nothing.
func (p *Processor) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	return p.tracer.Start(ctx, name)
}

// noSpan is the span of nothing (a no-op).
var noSpan = trace.SpanFromContext(context.Background())

// endSpan ends span, marking it failed with err if err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceBatch records a span of a batch operation over n messages that
// may each belong to another trace (a receive, a delete): its own root,
// with a link to the trace of each message (links(i)), as a span has one
// parent. It is recorded after the fact (from began) and only when the
// batch held messages, so that an idle long poll leaves no trace; links
// is not called when the span does not record.
func (p *Processor) traceBatch(name string, began time.Time, n int, links func(i int) trace.SpanContext, err error) {
	if n == 0 {
		return
	}
	_, span := p.tracer.Start(context.Background(), name, trace.WithTimestamp(began),
		trace.WithSpanKind(trace.SpanKindConsumer))
	if !span.IsRecording() {
		span.End()
		return
	}
	for i := range n {
		if sc := links(i); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	span.SetAttributes(attribute.Int("messaging.batch.message_count", n))
	endSpan(span, err)
}
