// Package awsintake accepts orders in the AWS mode (orderflow.Intake): the
// order and its idempotency record in DynamoDB (package dynamostore), the
// order's message in SQS (package sqsqueue). The two services cannot be
// written in one transaction, as the embedded mode's SQLite can; Accept
// orders its writes so that nothing is lost or doubled. The package reaches
// both services through the small interfaces Store and Queue, which
// *dynamostore.Store and *sqsqueue.Queue implement; adapters do not import
// it.
package awsintake

import (
	"context"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/dynamostore"
)

// Store is what Intake needs of the DynamoDB store (*dynamostore.Store).
type Store interface {
	BeginOrder(ctx context.Context, o orderflow.Order, k orderflow.IdempotencyKey) (dynamostore.Begun, error)
	FinishOrder(ctx context.Context, k orderflow.IdempotencyKey, b dynamostore.Begun) error
	AbandonOrder(ctx context.Context, k orderflow.IdempotencyKey, b dynamostore.Begun) error
	Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error)
}

// Queue is what Intake needs of the SQS queue (*sqsqueue.Queue).
type Queue interface {
	Send(ctx context.Context, msgs ...orderflow.Message) error
}

// Options are Intake's optional settings.
type Options struct {
	// Logger receives the warnings of a cleanup that failed (default:
	// discarded).
	Logger *slog.Logger
	// Now is the clock of the transitions Intake writes (default
	// time.Now).
	Now func() time.Time
}

// Intake is the api's write path in the AWS mode. It is safe for
// concurrent use.
type Intake struct {
	store Store
	queue Queue
	log   *slog.Logger
	now   func() time.Time
}

var _ orderflow.Intake = (*Intake)(nil)

// New returns an Intake that stores orders in store and queues their
// messages on queue.
func New(store Store, queue Queue, opts Options) *Intake {
	in := &Intake{store: store, queue: queue, log: opts.Logger, now: opts.Now}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.now == nil {
		in.now = time.Now
	}
	return in
}

// Accept stores o and sends its message (see orderflow.Intake), in this
// order:
//
//  1. BeginOrder: with an Idempotency-Key, one DynamoDB transaction puts
//     the key's record (state "pending", the request hash, o's id) and the
//     order (PENDING), each only if absent; without a key, a conditional
//     put of the order. A key seen before decides instead: another hash →
//     EMismatch (422); "done" → replay of the original order (no second
//     message); "pending" and younger than ORDERFLOW_TAKEOVER_AFTER →
//     EConflict (409, the first request is in flight); older → the first
//     request died, and this one takes the record over (conditionally, so
//     one retry wins) and carries on with the original order.
//  2. Send the message (SendMessageBatch, coalesced with other requests).
//  3. FinishOrder marks the key's record "done".
//
// Why nothing is lost or doubled: the order is durable before its message
// exists, so the processor never sees a message without an order (beyond
// the index lag it already retries). If the process dies between 1 and 2,
// the client (who got no 202) retries with its key, takes the stale record
// over and sends the message for the same order id: one order, one message.
// If it dies between 2 and 3, a retry after the takeover time sends a
// second message for the same order, which the processor recognises as a
// duplicate (the order is in work or final); no second order, no second
// charge. Without a key, or if the client never retries, the processor's
// sweeper (processor.Sweeper) re-sends the message of any order still
// PENDING after ORDERFLOW_SWEEP_AFTER, from the sparse by_pending index. If
// the send fails while the api is alive, the client gets 503: with a key,
// the record is made stale at once so that the retry takes it over without
// waiting; without a key the order is ended FAILED (a client without a key
// retries with a new order, and must not get two), and only if even that
// write fails can the sweeper later complete an order whose client was
// told 503, the ambiguity every timeout has; clients that care send keys.
func (in *Intake) Accept(ctx context.Context, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool, error) {
	b, err := in.store.BeginOrder(ctx, o, key)
	if err != nil {
		return orderflow.Order{}, false, err
	}
	if !b.NeedsMessage() {
		return b.Order, false, nil
	}
	msg := orderflow.Message{OrderID: b.Order.ID, RequestID: b.Order.RequestID, TraceParent: b.Order.TraceParent}
	if err := in.queue.Send(ctx, msg); err != nil {
		in.notSent(ctx, key, b, err)
		return orderflow.Order{}, false, err
	}
	if err := in.store.FinishOrder(ctx, key, b); err != nil {
		// The order and its message are in: the 202 is true. A retry with
		// the key after the takeover time sends a duplicate message, which
		// the processor drops.
		in.log.WarnContext(ctx, "order accepted but its idempotency key not marked done", "err", err)
	}
	return b.Order, true, nil
}

// notSent cleans up after a failed send; see Accept.
func (in *Intake) notSent(ctx context.Context, key orderflow.IdempotencyKey, b dynamostore.Begun, sendErr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if key.Key != "" {
		if err := in.store.AbandonOrder(ctx, key, b); err != nil {
			in.log.WarnContext(ctx, "order message not sent; its idempotency key stays in flight until the takeover time",
				"err", sendErr, "abandon_err", err)
		}
		return
	}
	f := &orderflow.Failure{Code: orderflow.ReasonProcessingFailed, Detail: "the order could not be queued and was not accepted (the api answered 503); place it again"}
	_, err := in.store.Transition(ctx, orderflow.Transition{ID: b.Order.ID, From: orderflow.StatusPending, To: orderflow.StatusFailed, Failure: f, At: in.now().UTC()})
	if err != nil {
		in.log.ErrorContext(ctx, "order message not sent and the order not ended; the sweeper will process it",
			"err", sendErr, "fail_err", err)
	}
}
