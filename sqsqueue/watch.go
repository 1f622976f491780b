package sqsqueue

import (
	"context"
	"time"

	"github.com/orderflow/orderflow"
)

// watchBatch bounds how many dead messages one round of WatchDead looks at.
const watchBatch = 100

// WatchDead runs until ctx ends: every interval it receives the messages in
// the dead-letter queue, calls handle for each one it has not handled yet
// (in this process), and leaves all of them in the dead-letter queue,
// visible again, for the operator (orderflow dlq); one received for the
// first time is re-filed with its receive count (see settleDead), so that
// the watch's own receives do not raise the count the operator sees. It is
// the source of the processor's dead-letter watch
// (processor.DeadLetterSource): SQS moves messages by itself, so the
// processor side looks after the fact. A message whose handle fails is
// tried again next round. While a round runs (milliseconds) its messages
// are hidden, so an operator's ListDead at that moment may miss them; keep
// interval well above a round (the default is 10s). Errors reaching SQS
// are logged and the round retried later; WatchDead returns nil when ctx
// ends.
func (q *Queue) WatchDead(ctx context.Context, interval time.Duration, handle func(context.Context, orderflow.Delivery) error) error {
	done := map[string]time.Time{} // message id → when handled
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		q.watchRound(ctx, done, handle)
		// Forget what was handled long ago, so that the map stays small;
		// a forgotten message is handled again, which handle tolerates.
		for id, at := range done {
			if time.Since(at) > time.Hour {
				delete(done, id)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (q *Queue) watchRound(ctx context.Context, done map[string]time.Time, handle func(context.Context, orderflow.Delivery) error) {
	// A round runs to its end even if ctx ends meanwhile (each call is
	// bounded): a receive cut off in flight would hide messages that the
	// round then could not make visible again.
	rctx := context.WithoutCancel(ctx)
	// Short polls keep the round brief: while it runs, the messages it
	// received are hidden from the operator's dlq list. A message a short
	// poll misses is seen next round.
	ds, err := q.receiveDead(rctx, watchBatch, 0)
	if err != nil && ctx.Err() == nil {
		q.log.Warn("dead-letter watch: cannot receive", "err", err)
	}
	handled := make([]bool, len(ds))
	for i, d := range ds {
		if _, ok := done[d.MessageID]; ok || err != nil || ctx.Err() != nil {
			continue
		}
		if err := handle(rctx, d.Delivery); err != nil {
			q.log.Warn("dead-letter watch: cannot end the order of a dead message; will retry",
				"message_id", d.MessageID, "order_id", d.OrderID, "err", err)
			continue
		}
		handled[i] = true
	}
	// Leave them for the operator, whatever happened; a re-filed message
	// is remembered under its new id.
	if err := q.settleDead(rctx, ds); err != nil {
		q.log.Warn("dead-letter watch: cannot leave messages in the dead-letter queue as they were", "err", err)
	}
	for i, d := range ds {
		if handled[i] {
			done[d.MessageID] = time.Now()
		}
	}
}
