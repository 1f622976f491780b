package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/orderflow/orderflow"
)

// DeadLetterSource hands out the messages of the dead-letter queue whose
// orders the processor is to end (see WatchDeadLetters). The embedded
// SQLite queue and the SQS queue implement it.
type DeadLetterSource interface {
	// WatchDead runs until ctx ends and returns nil then: it calls handle
	// for each dead message not handled yet, looking at least every
	// interval, and calls it again later for a message whose handle
	// returned an error. A message may be handled more than once (after a
	// restart, or by several processors), so handle must be idempotent.
	WatchDead(ctx context.Context, interval time.Duration, handle func(context.Context, orderflow.Delivery) error) error
}

// WatchDeadLetters ends the orders of dead-lettered messages until ctx
// ends, then returns nil: each message Deps.DeadLetters hands out goes
// through endDeadLettered, the dead-letter policy, every
// Config.DeadLetterInterval or sooner if the source is told of a new dead
// message. Each order it ends is counted in orders_processed_total and
// logged as an "order transition", like the orders the pipeline ends.
// Without Deps.DeadLetters it waits for ctx. It is safe to run beside Run.
func (p *Processor) WatchDeadLetters(ctx context.Context) error {
	if p.dead == nil {
		<-ctx.Done()
		return nil
	}
	return p.dead.WatchDead(ctx, p.cfg.DeadLetterInterval, p.endDeadLettered)
}

// deadLetterRounds bounds how often endDeadLettered decides again after a
// conditional write lost to another worker: an order moves forward at most
// twice (PENDING → PROCESSING → final), so a third round finds it final.
const deadLetterRounds = 3

// endDeadLettered is the dead-letter policy, the one place that decides how
// the order of a dead-lettered message ends. The message was received
// MaxReceives times without its order being finished (most often the
// processor died during the last attempt), so no attempt is coming:
//   - an order PROCESSING with a cancel requested: CANCELLED, its stock
//     released and its payment refunded (finishCancel);
//   - an order PROCESSING whose payment the gateway holds (Payment.Charged)
//     passed every stage (payment is the last): COMPLETED;
//   - any other order not yet final: FAILED with ReasonDeadLettered, then
//     its stock released (Inventory.Release), so that no customer is
//     charged for a FAILED order and no stock stays held by one;
//   - a final order other than COMPLETED: its stock released again and
//     any charge refunded (for a watch that died between its writes, and
//     for an attempt that reserved or charged beside it: settleEnded);
//   - a COMPLETED order, an order that does not exist, a poison message
//     (Run fails a PENDING order it names on its last receive): nothing.
//
// Every write is conditional or idempotent, so a message handled twice, or
// by several processors, ends its order once. An error means "try again
// later".
func (p *Processor) endDeadLettered(ctx context.Context, d orderflow.Delivery) error {
	if d.Err != nil {
		return nil
	}
	ctx = orderflow.WithOrderID(orderflow.WithRequestID(ctx, d.RequestID), d.OrderID)
	o, err := call(ctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.GetOrder(ctx, d.OrderID) })
	switch {
	case orderflow.ErrorCode(err) == orderflow.ENotFound:
		return nil
	case err != nil:
		return fmt.Errorf("get order: %w", err)
	}
	ctx = orderflow.WithUserID(ctx, o.UserID)
	if d.RequestID == "" && o.RequestID != "" {
		ctx = orderflow.WithRequestID(ctx, o.RequestID)
	}
	tp := d.TraceParent
	if tp == "" {
		tp = o.TraceParent
	}
	ctx, span := p.startOrderSpan(ctx, spanDeadLetter, tp, d)
	defer span.End()
	for range deadLetterRounds {
		if o.Status.Terminal() {
			return p.settleEnded(ctx, o)
		}
		if o.Status == orderflow.StatusProcessing && o.Cancellation != nil {
			_, err := p.finishCancel(ctx, o)
			return err
		}
		t, err := p.deadLetterEnd(ctx, o, d.ReceiveCount)
		if err != nil {
			return err
		}
		stored, err := call(ctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.Transition(ctx, t) })
		if orderflow.ErrorCode(err) == orderflow.EConflict && stored.ID != "" {
			o = stored // moved meanwhile: decide again on what it is now
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		p.logTransition(ctx, t.From, t.To, t.Failure)
		p.countEnd(t.To)
		o.Status = t.To
		return p.settleEnded(ctx, o)
	}
	return fmt.Errorf("order %s kept moving while its dead-lettered message was handled", o.ID)
}

// deadLetterEnd is the transition that ends o, not final, by the
// dead-letter policy: COMPLETED if it is PROCESSING and the gateway holds
// its payment, else FAILED (ReasonDeadLettered).
func (p *Processor) deadLetterEnd(ctx context.Context, o orderflow.Order, receives int) (orderflow.Transition, error) {
	t := orderflow.Transition{ID: o.ID, From: o.Status, To: orderflow.StatusCompleted, At: p.now().UTC()}
	if o.Status == orderflow.StatusProcessing {
		paid, err := call(ctx, p, func(ctx context.Context) (bool, error) { return p.pay.Charged(ctx, string(o.ID)) })
		if err != nil {
			return t, fmt.Errorf("look up payment: %w", err)
		}
		if paid {
			return t, nil
		}
	}
	detail := "the order's message was moved to the dead-letter queue without the order being finished"
	if receives > 0 {
		detail = fmt.Sprintf("the order's message was received %d times without the order being finished and was moved to the dead-letter queue", receives)
	}
	t.To, t.Failure = orderflow.StatusFailed, &orderflow.Failure{Code: orderflow.ReasonDeadLettered, Detail: detail}
	return t, nil
}
