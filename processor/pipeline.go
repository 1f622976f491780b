package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/orderflow/orderflow"
)

// attempt is one delivery of one order on its way through the stages.
type attempt struct {
	d       orderflow.Delivery
	o       orderflow.Order
	last    bool // ReceiveCount ≥ MaxReceives: no redelivery follows
	charged bool // the payment was taken, in this attempt or an earlier one
	// unpaid: the gateway said no earlier attempt took the payment, or
	// this attempt started the order (nothing can have charged it).
	unpaid bool
	start  time.Time
}

// process runs d through the pipeline and says what to do with it.
func (p *Processor) process(ctx context.Context, d orderflow.Delivery) outcome {
	a := &attempt{d: d, last: d.ReceiveCount >= p.queuePolicy().MaxReceives, start: time.Now()}
	if d.Err != nil {
		return p.poisoned(ctx, a)
	}
	if owner, ok := p.claim(d.OrderID, d.MessageID); !ok {
		if owner != d.MessageID {
			// Another message for this order is in work here and stays in
			// the queue until the order is final: this copy is redundant.
			p.log.InfoContext(ctx, "duplicate message for an order in work; deleting it",
				"message_id", d.MessageID, "in_work", owner)
			return p.ack(a, kindDuplicate)
		}
		// The same message came back while still in work (its visibility
		// lapsed): the attempt in work decides; look again later.
		p.log.WarnContext(ctx, "message redelivered while still in work; putting it back",
			"message_id", d.MessageID, "receive_count", d.ReceiveCount)
		return p.ack(a, kindBusy)
	}
	defer p.unclaim(d.OrderID)

	ctx, out, ok := p.begin(ctx, a)
	if !ok {
		return out
	}
	for _, s := range p.stages {
		if s.itemsOnly && len(a.o.Items) == 0 {
			continue
		}
		if s.cancelPoint {
			if out, stop := p.cancelBoundary(ctx, a); stop {
				return out
			}
		}
		start := time.Now()
		sctx, span := p.startSpan(ctx, s.span)
		f, err := call(sctx, p, func(ctx context.Context) (*orderflow.Failure, error) { return s.stage.pass(ctx, a.o) })
		endSpan(span, err)
		p.metrics.stage[s.label].Observe(time.Since(start).Seconds())
		if err != nil {
			return p.transient(ctx, a, s.step, err)
		}
		if f != nil {
			return p.reject(ctx, a, *f, s.afterReserve)
		}
	}
	a.charged = true // the last stage took the payment
	return p.complete(ctx, a)
}

// complete moves the paid order of a to COMPLETED, a write the store
// refuses while a cancel is requested: then the order is cancelled and
// its payment refunded instead.
func (p *Processor) complete(ctx context.Context, a *attempt) outcome {
	_, err := p.move(ctx, a, orderflow.StatusCompleted, nil)
	if errors.Is(err, errCancelRequested) {
		return p.cancel(ctx, a)
	}
	if err == nil && a.o.Status != orderflow.StatusCompleted {
		err = p.settleEnded(ctx, a.o) // another worker ended it first
	}
	if err != nil {
		return p.transient(ctx, a, "complete", err)
	}
	return p.ack(a, kindFinished)
}

// begin starts the order of a (PENDING → PROCESSING), or finds it further
// on, and returns the context of its work and true if the stages are to
// run; else the outcome of the attempt and false.
func (p *Processor) begin(ctx context.Context, a *attempt) (context.Context, outcome, bool) {
	d := a.d
	sctx, span := p.startSpan(ctx, spanStart)
	o, err := call(sctx, p, func(ctx context.Context) (orderflow.Order, error) {
		return p.store.StartOrder(ctx, d.OrderID, p.now().UTC())
	})
	endSpan(span, err)
	started := err == nil
	if orderflow.ErrorCode(err) == orderflow.EConflict && o.ID != "" {
		err = nil // not PENDING: o is its current state
	}
	if err == nil && p.cfg.Region != "" && o.Region != "" && o.Region != p.cfg.Region {
		p.log.InfoContext(ctx, "order belongs to another region; deleting the message", "order_id", o.ID, "region", o.Region)
		return ctx, p.ack(a, kindForeign), false
	}
	switch {
	case orderflow.ErrorCode(err) == orderflow.ENotFound:
		if ctx.Err() != nil {
			return ctx, p.ack(a, kindDrained), false
		}
		p.log.WarnContext(ctx, "order not found (yet); will retry", "receive_count", d.ReceiveCount)
		return ctx, p.ack(a, kindNotFound), false
	case err != nil:
		return ctx, p.transient(ctx, a, "start processing", err), false
	}
	a.o = o
	ctx = orderflow.WithUserID(ctx, o.UserID)
	if o.RequestID != "" && d.RequestID == "" {
		ctx = orderflow.WithRequestID(ctx, o.RequestID)
	}
	if started {
		p.logTransition(ctx, orderflow.StatusPending, orderflow.StatusProcessing, nil)
	}
	if o.Status.Terminal() {
		// A CANCELLED order's first message ends here too: it was
		// cancelled while PENDING, and no stage runs.
		p.log.InfoContext(ctx, "order already final; deleting the redelivered message", "status", o.Status)
		if err := p.settleEnded(ctx, o); err != nil {
			return ctx, p.transient(ctx, a, "settle", err), false
		}
		return ctx, p.ack(a, kindFinished), false
	}
	if o.Cancellation != nil {
		// PROCESSING with a cancel requested: an attempt that died, or
		// another one in work, left it; cancelling is idempotent.
		return ctx, p.cancel(ctx, a), false
	}
	a.unpaid = started
	if a.unpaid {
		return ctx, outcome{}, true
	}
	// PROCESSING already: an attempt that died before recording the
	// outcome (or a duplicate message's, in work elsewhere) may have
	// taken the payment. Then the order completes; running the stages
	// again could now reject or fail it (a fraud window moved on, a stage
	// timing out), and a paid order must never end so.
	paid, err := call(ctx, p, func(ctx context.Context) (bool, error) { return p.pay.Charged(ctx, string(o.ID)) })
	if err != nil {
		return ctx, p.transient(ctx, a, "look up payment", err), false
	}
	if !paid {
		a.unpaid = true
		return ctx, outcome{}, true
	}
	a.charged = true
	p.log.InfoContext(ctx, "order paid by an earlier attempt; completing it", "receive_count", d.ReceiveCount)
	return ctx, p.complete(ctx, a), false
}

// poisoned handles a message that cannot be decoded: it is kept until the
// queue dead-letters it (see failPoisoned for its last receive).
func (p *Processor) poisoned(ctx context.Context, a *attempt) outcome {
	d := a.d
	if d.ReceiveCount <= 1 {
		// Counted once per message, on its first receive: every message
		// has one, seen by exactly one processor, whereas the
		// dead-lettering happens out of sight on SQS (where each
		// processor's dead-letter watch sees it).
		p.metrics.poison.Inc()
	}
	p.log.ErrorContext(ctx, "poison message: cannot decode; it goes to the dead-letter queue after max receives",
		"message_id", d.MessageID, "receive_count", d.ReceiveCount, "err", d.Err)
	out := p.ack(a, kindPoison)
	if out.fail {
		p.failPoisoned(ctx, a)
	}
	return out
}

// failPoisoned records FAILED for the order a poison message names, if
// the body still names one and that order was never started: a PENDING
// order has no stock reserved and no charge, so failing it is safe, and
// the customer learns its fate instead of waiting for ever.
func (p *Processor) failPoisoned(ctx context.Context, a *attempt) {
	id, err := orderflow.DecodeOrderID(a.d.Body)
	if err != nil {
		return
	}
	ctx = orderflow.WithOrderID(ctx, id)
	o, err := call(ctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.GetOrder(ctx, id) })
	if err != nil || o.Status != orderflow.StatusPending {
		return
	}
	a.o = o
	ctx = orderflow.WithUserID(ctx, o.UserID)
	f := orderflow.Failure{
		Code:   orderflow.ReasonDeadLettered,
		Detail: "the order's queue message could not be read: " + orderflow.ErrorDetail(a.d.Err),
	}
	if _, err := p.move(ctx, a, orderflow.StatusFailed, &f); err != nil {
		p.log.ErrorContext(ctx, "cannot record the order of a poison message as FAILED", "err", err)
	}
}

// reject releases the stock if asked and moves the order to REJECTED. A
// stage after the reservation (the payment declined because a cancel
// elsewhere voided it, a fraud score) may have raced a cancel request:
// that order is cancelled instead, as its owner asked.
func (p *Processor) reject(ctx context.Context, a *attempt, f orderflow.Failure, release bool) outcome {
	if release {
		if out, stop := p.cancelBoundary(ctx, a); stop {
			return out
		}
	}
	if release && len(a.o.Items) > 0 {
		if _, err := call(ctx, p, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, p.inv.Release(ctx, a.o.ID)
		}); err != nil {
			return p.transient(ctx, a, "release stock", err)
		}
	}
	if _, err := p.move(ctx, a, orderflow.StatusRejected, &f); err != nil {
		return p.transient(ctx, a, "reject", err)
	}
	return p.ack(a, kindFinished)
}

// transient handles a retryable error of step: another attempt later, or
// on the last receive, the dead-letter queue (and FAILED if decide says).
func (p *Processor) transient(ctx context.Context, a *attempt, step string, err error) outcome {
	if ctx.Err() != nil {
		p.log.WarnContext(ctx, "order abandoned by the drain; it will be redelivered", "step", step)
		return p.ack(a, kindDrained)
	}
	out := p.ack(a, kindTransient)
	switch {
	case out.action == actRetry:
		p.log.WarnContext(ctx, "transient error; will retry", "step", step, "err", err, "receive_count", a.d.ReceiveCount)
	case out.fail:
		p.giveUp(ctx, a, step, err)
	case a.charged:
		// Never FAILED after taking the money: the dead-letter watch
		// completes the order, the gateway holding its payment, without
		// charging again.
		p.log.ErrorContext(ctx, "order paid but its completion could not be recorded; left for the dead-letter watch to complete",
			"step", step, "err", err)
	case a.o.ID == "":
		p.log.ErrorContext(ctx, "giving up on an order that could not be read; left for the dead-letter queue", "step", step, "err", err)
	default:
		// Whether an earlier attempt took the payment is not known: the
		// dead-letter watch asks the gateway (COMPLETED if charged).
		p.log.ErrorContext(ctx, "giving up on an order an earlier attempt may have paid; left for the dead-letter queue", "step", step, "err", err)
	}
	return out
}

// giveUp ends an unpaid order whose last attempt failed at step: its stock
// back, then FAILED. Either write failing leaves it to the dead-letter path.
func (p *Processor) giveUp(ctx context.Context, a *attempt, step string, err error) {
	if len(a.o.Items) > 0 {
		if _, rerr := call(ctx, p, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, p.inv.Release(ctx, a.o.ID)
		}); rerr != nil {
			p.log.ErrorContext(ctx, "giving up on the order but cannot release its stock; left for the dead-letter queue",
				"step", step, "err", err, "release_err", rerr)
			return
		}
	}
	f := orderflow.Failure{
		Code:   orderflow.ReasonProcessingFailed,
		Detail: fmt.Sprintf("%s failed after %d attempts: %s", step, a.d.ReceiveCount, failureDetail(err)),
	}
	if _, merr := p.move(ctx, a, orderflow.StatusFailed, &f); merr != nil {
		p.log.ErrorContext(ctx, "cannot record the order as FAILED; left for the dead-letter queue",
			"step", step, "err", err, "record_err", merr)
	}
}

// ack decides what becomes of a's message after an attempt that came to
// k, and counts a retry.
func (p *Processor) ack(a *attempt, k kind) outcome {
	out := decide(verdict{
		kind: k, receiveCount: a.d.ReceiveCount, last: a.last, messageID: a.d.MessageID,
		read: a.o.ID != "", charged: a.charged, unpaid: a.unpaid,
	}, p.cfg.BackoffBase, p.cfg.BackoffMax)
	if out.action == actRetry {
		p.metrics.retries.WithLabelValues(k.reason()).Inc()
	}
	return out
}

// move applies a conditional transition of a.o to status to and keeps
// a.o current. done reports that the order is terminal afterwards (by
// this move or by another worker's).
func (p *Processor) move(ctx context.Context, a *attempt, to orderflow.Status, f *orderflow.Failure) (done bool, err error) {
	from := a.o.Status
	t := orderflow.Transition{ID: a.o.ID, From: from, To: to, Failure: f, At: p.now().UTC()}
	sctx, span := p.startSpan(ctx, spanTransition)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("orderflow.from", string(from)), attribute.String("orderflow.to", string(to)))
	}
	o, err := call(sctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.Transition(ctx, t) })
	endSpan(span, err)
	if orderflow.ErrorCode(err) == orderflow.EConflict {
		// Another delivery moved it first, or its owner asked to cancel.
		switch {
		case o.Status == from && to == orderflow.StatusCompleted && o.Cancellation != nil:
			a.o = o
			return false, errCancelRequested
		case o.Status.Terminal():
			p.log.InfoContext(ctx, "order already final", "status", o.Status, "wanted", to)
			a.o = o
			return true, nil
		case o.Status.CanMoveTo(to) && o.Status != from:
			a.o = o
			return p.move(ctx, a, to, f)
		}
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", t, err)
	}
	a.o = o
	p.logTransition(ctx, from, to, f)
	p.countEnd(to)
	if to.Terminal() {
		p.metrics.stage[stageTotal].Observe(time.Since(a.start).Seconds())
	}
	return to.Terminal(), nil
}

// countEnd counts an order that reached status to in
// orders_processed_total (nothing for a status that is not terminal).
func (p *Processor) countEnd(to orderflow.Status) {
	switch to {
	case orderflow.StatusCompleted:
		p.metrics.success.Inc()
	case orderflow.StatusRejected:
		p.metrics.rejected.Inc()
	case orderflow.StatusFailed:
		p.metrics.failed.Inc()
	case orderflow.StatusCancelled:
		p.metrics.cancelled.Inc()
	}
}

// logTransition writes the one Info line per transition. LogAttrs skips
// all work when Info is disabled and avoids boxing the attributes.
func (p *Processor) logTransition(ctx context.Context, from, to orderflow.Status, f *orderflow.Failure) {
	if f == nil {
		p.log.LogAttrs(ctx, slog.LevelInfo, "order transition",
			slog.String("from", string(from)), slog.String("to", string(to)))
		return
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "order transition",
		slog.String("from", string(from)), slog.String("to", string(to)),
		slog.String("reason", f.Code), slog.String("detail", f.Detail))
}

// call runs f with the stage timeout.
func call[T any](ctx context.Context, p *Processor, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StageTimeout)
	defer cancel()
	return f(ctx)
}

// failureDetail is the part of err shown to the customer: the domain
// detail of store errors (whose causes may name internals), the text of
// other errors (a gateway's messages are meant to be read).
func failureDetail(err error) string {
	var e *orderflow.Error
	s := err.Error()
	if errors.As(err, &e) {
		s = orderflow.ErrorDetail(err)
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// claim marks order id as in work in this process for message msgID; if
// it already is, it returns the message in work and false.
func (p *Processor) claim(id orderflow.OrderID, msgID string) (owner string, ok bool) {
	p.busyMu.Lock()
	defer p.busyMu.Unlock()
	if owner, busy := p.busy[id]; busy {
		return owner, false
	}
	p.busy[id] = msgID
	return msgID, true
}

func (p *Processor) unclaim(id orderflow.OrderID) {
	p.busyMu.Lock()
	defer p.busyMu.Unlock()
	delete(p.busy, id)
}
