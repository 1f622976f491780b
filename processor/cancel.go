package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow"
)

// errCancelRequested is move's answer when the store refused COMPLETED
// because the owner asked to cancel the order.
var errCancelRequested = errors.New("a cancel is requested")

// cancelBoundary is a stage boundary of a: it reads the order again and,
// if its owner asked to cancel it meanwhile, cancels it (stop=true with
// the outcome); an order another worker ended is done too. A failed read
// is a transient error of the attempt.
func (p *Processor) cancelBoundary(ctx context.Context, a *attempt) (outcome, bool) {
	if bs, ok := p.store.(boundaryStore); ok {
		same, err := call(ctx, p, func(ctx context.Context) (bool, error) { return bs.Undisturbed(ctx, a.o.ID, a.o.Status) })
		if err != nil {
			return p.transient(ctx, a, "read order", err), true
		}
		if same {
			return outcome{}, false
		}
	}
	o, err := call(ctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.GetOrder(ctx, a.o.ID) })
	if err != nil {
		return p.transient(ctx, a, "read order", err), true
	}
	switch {
	case o.Status.Terminal():
		a.o = o
		p.log.InfoContext(ctx, "order ended by another worker", "status", o.Status)
		if err := p.settleEnded(ctx, o); err != nil {
			return p.transient(ctx, a, "settle", err), true
		}
		return p.ack(a, kindFinished), true
	case o.Cancellation != nil:
		a.o = o
		return p.cancel(ctx, a), true
	}
	return outcome{}, false
}

// cancel ends the order of a, PROCESSING with a cancel requested, at a
// stage boundary (finishCancel) and says what becomes of its message.
func (p *Processor) cancel(ctx context.Context, a *attempt) outcome {
	o, err := p.finishCancel(ctx, a.o)
	if err != nil {
		return p.transient(ctx, a, "cancel", err)
	}
	a.o, a.charged = o, false
	if o.Status == orderflow.StatusCancelled {
		p.metrics.stage[stageTotal].Observe(time.Since(a.start).Seconds())
	}
	return p.ack(a, kindFinished)
}

// finishCancel ends o, PROCESSING with a cancel requested: its stock is
// released, its payment refunded through the gateway (which also voids
// the order's key, so that a charge still in flight in another attempt is
// declined rather than taken), then the order moves to CANCELLED with the
// refund recorded. Each step is idempotent and the last is conditional, so
// an attempt that dies between them leaves the next attempt, or the
// dead-letter watch, to finish the same way; an order another worker ended
// meanwhile is returned as it is.
func (p *Processor) finishCancel(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
	if len(o.Items) > 0 {
		if _, err := call(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, p.inv.Release(ctx, o.ID) }); err != nil {
			return o, fmt.Errorf("release stock: %w", err)
		}
	}
	r, err := call(ctx, p, func(ctx context.Context) (orderflow.Refund, error) { return p.pay.Refund(ctx, string(o.ID), o.ID) })
	if err != nil {
		return o, fmt.Errorf("refund: %w", err)
	}
	t := orderflow.Transition{ID: o.ID, From: orderflow.StatusProcessing, To: orderflow.StatusCancelled, At: p.now().UTC()}
	if r.Refunded() {
		t.RefundID = r.ID
		p.log.InfoContext(ctx, "payment refunded for a cancelled order", "refund_id", r.ID, "charge_id", r.ChargeID)
	}
	stored, err := call(ctx, p, func(ctx context.Context) (orderflow.Order, error) { return p.store.Transition(ctx, t) })
	if orderflow.ErrorCode(err) == orderflow.EConflict && stored.Status.Terminal() {
		return stored, nil
	}
	if err != nil {
		return o, fmt.Errorf("%s: %w", t, err)
	}
	p.logTransition(ctx, t.From, t.To, nil)
	p.countEnd(t.To)
	return stored, nil
}

// settleEnded undoes what o, ended other than COMPLETED, may still hold:
// its stock is released and any charge refunded. A worker that ends an
// order releases its stock (and, cancelling, refunds) before it moves
// the order; an attempt of another message of the same order (a re-sent
// one, or one in work beside the dead-letter watch) that reserved or
// charged between those writes holds stock or money that they did not
// see. So every attempt and watch that finds the order ended settles it
// again. Release and Refund are idempotent, and no-ops when nothing is
// held; the refund also voids the order's key at the gateway, so that a
// charge still in flight elsewhere is declined.
func (p *Processor) settleEnded(ctx context.Context, o orderflow.Order) error {
	if o.Status == orderflow.StatusCompleted {
		return nil
	}
	if len(o.Items) > 0 {
		if _, err := call(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, p.inv.Release(ctx, o.ID) }); err != nil {
			return fmt.Errorf("release stock: %w", err)
		}
	}
	r, err := call(ctx, p, func(ctx context.Context) (orderflow.Refund, error) { return p.pay.Refund(ctx, string(o.ID), o.ID) })
	if err != nil {
		return fmt.Errorf("refund: %w", err)
	}
	if r.Refunded() && (o.Cancellation == nil || o.Cancellation.RefundID != r.ID) { // not the cancel's own refund
		p.log.WarnContext(ctx, "payment refunded: the order was ended elsewhere while an attempt charged it",
			"status", o.Status, "refund_id", r.ID, "charge_id", r.ChargeID)
	}
	return nil
}
