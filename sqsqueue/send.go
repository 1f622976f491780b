package sqsqueue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
)

// entryRetries is how often an entry SQS failed on its side is sent again.
const entryRetries = 3

// entry is one message waiting in a batch, with where its outcome goes.
type entry struct {
	msg  orderflow.Message
	done chan error // buffered: the flush never blocks on a caller gone
	// span is the context of the sender's "sqs send" span, or invalid
	// when the sender records no span.
	span trace.SpanContext
}

// batch collects up to 10 entries; full closes when it has 10.
type batch struct {
	entries []*entry
	full    chan struct{}
}

// Send enqueues msgs. Concurrent calls share SendMessageBatch requests: a
// batch is flushed when it holds 10 entries or FlushDelay after its first.
// Send returns when every one of its messages is sent or has failed (the
// first error is returned), or when ctx ends, in which case messages may
// still be sent: delivery is at least once.
//
// A sender in a recording span gets a producer span "sqs send", its child,
// until the outcome; the SendMessageBatch call (and its otelaws span) is
// then the child of the first such sender's span in the batch: a batch has
// one parent, and each message carries its own trace in its traceparent.
func (q *Queue) Send(ctx context.Context, msgs ...orderflow.Message) (err error) {
	if len(msgs) == 0 {
		return nil
	}
	var sc trace.SpanContext
	if trace.SpanFromContext(ctx).IsRecording() {
		var span trace.Span
		ctx, span = q.tracer.Start(ctx, "sqs send", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "aws_sqs"), attribute.Int("messaging.batch.message_count", len(msgs))))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
		sc = span.SpanContext()
	}
	entries := make([]*entry, len(msgs))
	for i, m := range msgs {
		entries[i] = &entry{msg: m, done: make(chan error, 1), span: sc}
	}
	q.mu.Lock()
	for _, e := range entries {
		if q.cur == nil {
			b := &batch{full: make(chan struct{})}
			q.cur = b
			go q.flushLater(b)
		}
		b := q.cur
		b.entries = append(b.entries, e)
		if len(b.entries) == maxBatch {
			close(b.full)
			q.cur = nil
		}
	}
	q.mu.Unlock()
	var first error
	for _, e := range entries {
		select {
		case err := <-e.done:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return orderflow.Unavailable(ctx.Err(), "sqs: send: gave up waiting")
		}
	}
	return first
}

// flushLater sends b when it is full or FlushDelay has passed.
func (q *Queue) flushLater(b *batch) {
	t := time.NewTimer(q.opts.FlushDelay)
	select {
	case <-b.full:
		t.Stop()
	case <-t.C:
		q.mu.Lock()
		if q.cur == b {
			q.cur = nil
		}
		q.mu.Unlock()
	}
	// From here on b is no longer shared: Send appends only to q.cur.
	q.flush(b.entries)
}

// flush sends entries in one SendMessageBatch and tells each its outcome,
// retrying entries that SQS failed on its side.
func (q *Queue) flush(entries []*entry) {
	for attempt := 0; len(entries) > 0; attempt++ {
		ctx, cancel := context.WithTimeout(batchContext(entries), q.opts.CallTimeout)
		reqs := make([]types.SendMessageBatchRequestEntry, len(entries))
		for i, e := range entries {
			reqs[i] = types.SendMessageBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				MessageBody:       aws.String(string(orderflow.EncodeMessage(e.msg))),
				MessageAttributes: attributes(e.msg),
			}
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.opts.QueueURL, Entries: reqs})
		cancel()
		if err != nil {
			err = mapErr(err, "send %d messages", len(entries))
			for _, e := range entries {
				e.done <- err
			}
			return
		}
		var retry []*entry
		failed := map[int]bool{}
		for _, f := range out.Failed {
			i, convErr := strconv.Atoi(aws.ToString(f.Id))
			if convErr != nil || i < 0 || i >= len(entries) || failed[i] {
				continue
			}
			failed[i] = true
			if !f.SenderFault && attempt < entryRetries {
				retry = append(retry, entries[i])
				continue
			}
			entries[i].done <- entryErr(f, fmt.Sprintf("send message for order %s", entries[i].msg.OrderID))
		}
		for i, e := range entries {
			if !failed[i] {
				e.done <- nil
			}
		}
		entries = retry
		if len(retry) > 0 {
			time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
		}
	}
}

// batchContext is the context of a batch's call: in the span of its first
// sender that records one.
func batchContext(entries []*entry) context.Context {
	for _, e := range entries {
		if e.span.IsValid() {
			return trace.ContextWithSpanContext(context.Background(), e.span)
		}
	}
	return context.Background()
}

// attributes are the message attributes of m: the request id and the
// trace context, for consumers that do not read the body.
func attributes(m orderflow.Message) map[string]types.MessageAttributeValue {
	if m.RequestID == "" && m.TraceParent == "" {
		return nil
	}
	a := map[string]types.MessageAttributeValue{}
	if m.RequestID != "" {
		a[attrRequestID] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(m.RequestID)}
	}
	if m.TraceParent != "" {
		a[attrTraceParent] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(m.TraceParent)}
	}
	return a
}
