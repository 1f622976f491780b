package sqsqueue

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderflow/orderflow"
)

// deadHide is how long the dead-letter operations hide the messages they
// received, so that their own next receive does not see them again; they
// make them visible again (or delete them) before returning.
const deadHide = 30 * time.Second

// deadWait is the long poll of dead-letter receives: long enough that SQS
// answers from all its servers, so that an empty answer means empty.
const deadWait = time.Second

// ListDead returns up to max dead messages and leaves them in the
// dead-letter queue: it receives them, then makes them visible again.
// ReceiveCount is the count in the dead-letter queue.
func (q *Queue) ListDead(ctx context.Context, max int) ([]orderflow.Delivery, error) {
	ds, err := q.receiveDead(ctx, max, deadWait)
	if rerr := q.unhide(ctx, ds); err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// receiveDead receives up to max distinct messages from the dead-letter
// queue, hidden for deadHide, long-polling each receive for wait.
func (q *Queue) receiveDead(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	var out []orderflow.Delivery
	seen := map[string]bool{}
	for len(out) < max {
		ds, err := q.receive(ctx, q.opts.DLQURL, min(maxBatch, max-len(out)), wait, deadHide)
		if err != nil {
			return out, err
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if !seen[d.MessageID] {
				seen[d.MessageID] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// unhide makes received dead messages visible again, 10 per call.
func (q *Queue) unhide(ctx context.Context, ds []orderflow.Delivery) error {
	var first error
	for start := 0; start < len(ds); start += maxBatch {
		chunk := ds[start:min(start+maxBatch, len(ds))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.Receipt), VisibilityTimeout: 0,
			}
		}
		cctx, cancel := q.callCtx(ctx, 0)
		_, err := q.client.ChangeMessageVisibilityBatch(cctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q.opts.DLQURL, Entries: entries})
		cancel()
		if err != nil && first == nil {
			first = mapErr(err, "make dead messages visible again")
		}
	}
	return first
}

// Redrive moves up to max dead messages back to the order queue: receive
// from the dead-letter queue, send the same body and attributes to the
// queue (a new message, so its receive count starts again), then delete
// from the dead-letter queue. A crash in between leaves a copy in both
// queues, which the processor treats as a duplicate; nothing is lost.
func (q *Queue) Redrive(ctx context.Context, max int) (int, error) {
	moved := 0
	for moved < max {
		ds, err := q.receive(ctx, q.opts.DLQURL, min(maxBatch, max-moved), deadWait, deadHide)
		if err != nil {
			return moved, err
		}
		if len(ds) == 0 {
			return moved, nil
		}
		sent, err := q.resend(ctx, ds)
		if len(sent) > 0 {
			receipts := make([]string, len(sent))
			for i, d := range sent {
				receipts[i] = d.Receipt
			}
			if derr := q.deleteFrom(ctx, q.opts.DLQURL, receipts); derr != nil && err == nil {
				err = derr
			}
			moved += len(sent)
		}
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// resend sends the bodies of ds to the order queue in one batch and returns
// the ones sent.
func (q *Queue) resend(ctx context.Context, ds []orderflow.Delivery) ([]orderflow.Delivery, error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(ds))
	for i, d := range ds {
		entries[i] = types.SendMessageBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			MessageBody:       aws.String(string(d.Body)),
			MessageAttributes: attributes(d.Message),
		}
	}
	cctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	out, err := q.client.SendMessageBatch(cctx, &sqs.SendMessageBatchInput{QueueUrl: &q.opts.QueueURL, Entries: entries})
	if err != nil {
		return nil, mapErr(err, "redrive messages")
	}
	var sent []orderflow.Delivery
	for _, s := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(ds) {
			sent = append(sent, ds[i])
		}
	}
	if len(out.Failed) > 0 {
		return sent, entryErr(out.Failed[0], "redrive message")
	}
	return sent, nil
}

// Purge deletes every dead message and returns how many it deleted. It
// receives and deletes rather than calling PurgeQueue, which SQS allows
// once a minute and which does not say how many it removed.
func (q *Queue) Purge(ctx context.Context) (int, error) {
	n := 0
	for {
		ds, err := q.receive(ctx, q.opts.DLQURL, maxBatch, deadWait, deadHide)
		if err != nil || len(ds) == 0 {
			return n, err
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			receipts[i] = d.Receipt
		}
		err = q.deleteFrom(ctx, q.opts.DLQURL, receipts)
		n += len(ds)
		if be, ok := err.(*orderflow.BatchError); ok {
			n -= len(be.Failed)
		} else if err != nil {
			return n - len(ds), err
		}
	}
}
