package sqlite

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Write spans. Every write (DB.write, DB.writeAtCommit) whose caller is in
// a recording span gets a "sqlite write" span, its child, from the
// caller's submit to its release (its wait for the group's commit and,
// unless at commit, the fsync): that is the store write in the order's
// trace. The group commit runs many callers' writes in one transaction, so
// the transaction gets one "sqlite transaction" span of its own, begin to
// COMMIT, as the child of the first recording write in it and linked to
// every other one: a span has one parent, and a child span per write
// would repeat the same interval thirty times. Writes whose caller records
// nothing (tracing off, a trace not sampled, the processor's idle receive
// polls) cost a check of the context and nothing else.

const (
	spanWrite = "sqlite write"
	spanTx    = "sqlite transaction"
)

var dbSystem = attribute.String("db.system.name", "sqlite")

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/orderflow/orderflow/sqlite")
}

// startWrite starts the write span of a caller in a recording span; the
// returned end (nil if none started) records the write's outcome.
func (db *DB) startWrite(ctx context.Context, atCommit bool) (context.Context, func(error)) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	ctx, span := db.tracer.Start(ctx, spanWrite, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem, attribute.Bool("sqlite.at_commit", atCommit)))
	return ctx, func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// traceTx records the span of the transaction of batch, begun at began,
// if a write in it records.
func (db *DB) traceTx(batch []*writeOp, began time.Time) {
	var parent context.Context
	var links []trace.Link
	for _, op := range batch {
		span := trace.SpanFromContext(op.ctx)
		if !span.IsRecording() {
			continue
		}
		if parent == nil {
			parent = op.ctx
			continue
		}
		links = append(links, trace.Link{SpanContext: span.SpanContext()})
	}
	if parent == nil {
		return
	}
	_, span := db.tracer.Start(parent, spanTx, trace.WithTimestamp(began), trace.WithLinks(links...),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(dbSystem, attribute.Int("sqlite.tx.writes", len(batch))))
	failed := 0
	for _, op := range batch {
		if op.err != nil {
			failed++
		}
	}
	if failed > 0 {
		span.SetAttributes(attribute.Int("sqlite.tx.failed_writes", failed))
	}
	span.End()
}
