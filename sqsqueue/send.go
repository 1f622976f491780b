package sqsqueue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderflow/orderflow"
)

// entryRetries is how often an entry SQS failed on its side is sent again.
const entryRetries = 3

// entry is one message waiting in a batch, with where its outcome goes.
type entry struct {
	msg  orderflow.Message
	done chan error // buffered: the flush never blocks on a caller gone
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
func (q *Queue) Send(ctx context.Context, msgs ...orderflow.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	entries := make([]*entry, len(msgs))
	for i, m := range msgs {
		entries[i] = &entry{msg: m, done: make(chan error, 1)}
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
		ctx, cancel := context.WithTimeout(context.Background(), q.opts.CallTimeout)
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
