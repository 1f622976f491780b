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

// attrDeadReceives is the message attribute that records, on a message in
// the dead-letter queue, how often the order queue delivered it (see
// settleDead).
const attrDeadReceives = "dead_receive_count"

// ListDead returns up to max dead messages and leaves them in the
// dead-letter queue (see settleDead). ReceiveCount is how often the order
// queue delivered the message before SQS moved it, which listing does not
// change.
func (q *Queue) ListDead(ctx context.Context, max int) ([]orderflow.Delivery, error) {
	dead, err := q.receiveDead(ctx, max, deadWait)
	if serr := q.settleDead(ctx, dead); err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	ds := make([]orderflow.Delivery, len(dead))
	for i, m := range dead {
		ds[i] = m.Delivery
	}
	return ds, nil
}

// deadMessage is a message received from the dead-letter queue.
type deadMessage struct {
	orderflow.Delivery // ReceiveCount: the order queue's (see receiveDead)
	attrs              map[string]types.MessageAttributeValue
	settled            bool // carries attrDeadReceives already
}

// receiveDead receives up to max distinct messages from the dead-letter
// queue, hidden for deadHide, long-polling each receive for wait. A
// message's ReceiveCount is its attrDeadReceives if settleDead has
// re-filed it; otherwise it is SQS's ApproximateReceiveCount, which SQS
// keeps when it moves a message, less this receive.
func (q *Queue) receiveDead(ctx context.Context, max int, wait time.Duration) ([]deadMessage, error) {
	var out []deadMessage
	seen := map[string]bool{}
	for len(out) < max {
		ms, err := q.receiveMessages(ctx, q.opts.DLQURL, min(maxBatch, max-len(out)), wait, deadHide)
		if err != nil {
			return out, err
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			d := deadMessage{Delivery: delivery(m), attrs: m.MessageAttributes}
			if seen[d.MessageID] {
				continue
			}
			seen[d.MessageID] = true
			if a, ok := m.MessageAttributes[attrDeadReceives]; ok {
				if n, err := strconv.Atoi(aws.ToString(a.StringValue)); err == nil {
					d.ReceiveCount, d.settled = n, true
				}
			}
			if !d.settled && d.ReceiveCount > 0 {
				d.ReceiveCount--
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// settleDead leaves received dead messages in the dead-letter queue,
// visible again. SQS has no way to look at a message without receiving it,
// and every receive raises its ApproximateReceiveCount: read in the
// dead-letter queue, that count would grow with every dlq list and every
// round of WatchDead. So the first time a dead message is received it is
// re-filed: sent to the dead-letter queue again, with the same body and
// attributes plus attrDeadReceives, the order queue's count, and then
// deleted; later receives read that attribute and only make the copy
// visible again. ms[i].MessageID becomes the copy's. A copy that cannot be
// sent leaves the original visible again for the next try; a crash
// between the send and the delete leaves both, the processor's usual
// duplicate. (The copy also starts the dead-letter queue's retention
// period afresh, which SQS otherwise counts from the original send.)
func (q *Queue) settleDead(ctx context.Context, ms []deadMessage) error {
	var again []string // receipts to make visible again
	var fresh []*deadMessage
	for i := range ms {
		if ms[i].settled {
			again = append(again, ms[i].Receipt)
		} else {
			fresh = append(fresh, &ms[i])
		}
	}
	var first error
	for start := 0; start < len(fresh); start += maxBatch {
		chunk := fresh[start:min(start+maxBatch, len(fresh))]
		unsent, err := q.refile(ctx, chunk)
		if err != nil && first == nil {
			first = err
		}
		again = append(again, unsent...)
	}
	if err := q.unhide(ctx, again); err != nil && first == nil {
		first = err
	}
	return first
}

// refile sends copies of chunk (at most 10) to the dead-letter queue with
// attrDeadReceives and deletes the originals of those sent; it returns the
// receipts of the originals not re-filed.
func (q *Queue) refile(ctx context.Context, chunk []*deadMessage) (unsent []string, err error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
	for i, m := range chunk {
		attrs := make(map[string]types.MessageAttributeValue, len(m.attrs)+1)
		for k, v := range m.attrs {
			attrs[k] = v
		}
		attrs[attrDeadReceives] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(m.ReceiveCount))}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(m.Body)), MessageAttributes: attrs}
	}
	cctx, cancel := q.callCtx(ctx, 0)
	out, err := q.client.SendMessageBatch(cctx, &sqs.SendMessageBatchInput{QueueUrl: &q.opts.DLQURL, Entries: entries})
	cancel()
	if err != nil {
		unsent = make([]string, len(chunk))
		for i, m := range chunk {
			unsent[i] = m.Receipt
		}
		return unsent, mapErr(err, "re-file dead messages")
	}
	sent := make([]bool, len(chunk))
	var originals []string
	for _, s := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(chunk) && !sent[i] {
			sent[i] = true
			originals = append(originals, chunk[i].Receipt)
			chunk[i].MessageID = aws.ToString(s.MessageId)
		}
	}
	for i, m := range chunk {
		if !sent[i] {
			unsent = append(unsent, m.Receipt)
		}
	}
	if len(out.Failed) > 0 {
		err = entryErr(out.Failed[0], "re-file dead message")
	}
	if derr := q.deleteFrom(ctx, q.opts.DLQURL, originals); derr != nil && err == nil {
		err = derr
	}
	return unsent, err
}

// unhide makes received dead messages visible again, 10 per call.
func (q *Queue) unhide(ctx context.Context, receipts []string) error {
	var first error
	for start := 0; start < len(receipts); start += maxBatch {
		chunk := receipts[start:min(start+maxBatch, len(receipts))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: 0,
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
