package processor

import (
	"context"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// Queue is the part of orderflow.Queue the processor uses.
type Queue interface {
	Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error)
	Delete(ctx context.Context, receipts ...string) error
	ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error
	Depth(ctx context.Context) (orderflow.QueueDepth, error)
	Ping(ctx context.Context) error
	// Policy is the queue's redelivery policy, which the processor
	// follows; EUnavailable while the queue cannot be reached.
	Policy(ctx context.Context) (orderflow.QueuePolicy, error)
}

// Store is what the processor needs of the order store. Implementations
// are safe for concurrent use and return EUnavailable when the store
// cannot be reached.
type Store interface {
	// GetOrder returns the order, or ENotFound.
	GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error)
	// Transition applies t if the order is in t.From (see orderflow.Store).
	Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error)
	// StartOrder moves order id from PENDING to PROCESSING (updated at
	// at) and returns it as stored afterwards. An order in another status
	// is returned unchanged with an EConflict error; ENotFound if there is
	// no such order.
	StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error)
	// Ping checks that the store can be reached.
	Ping(ctx context.Context) error
}

// boundaryStore is what a Store may offer besides for the stage
// boundaries: whether order id is still in status with no cancel
// requested (false, nil if there is no such order). Nearly always it is,
// and a store that answers this for less than GetOrder (the sqlite store
// reads two columns instead of the whole order, which cost 5 % of the
// server's CPU in cmd/bench) spares the processor the whole order; it
// reads the order only when the answer is no.
type boundaryStore interface {
	Undisturbed(ctx context.Context, id orderflow.OrderID, status orderflow.Status) (bool, error)
}

// Inventory reserves and releases the stock of an order. Both calls are
// idempotent per order (orderflow.Store implements it). A business decline
// (unknown SKU, not enough stock) is a *Failure with a nil error.
type Inventory interface {
	Reserve(ctx context.Context, id orderflow.OrderID, items []orderflow.Item) (*orderflow.Failure, error)
	Release(ctx context.Context, id orderflow.OrderID) error
}

// Fraud scores an order. A nil failure means it passes; a non-nil failure
// rejects the order; an error is transient.
type Fraud interface {
	Check(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error)
}

// Payment charges an order. A *Declined error is a business decline (the
// order is rejected); any other error is transient and the charge is tried
// again with the same IdempotencyKey, which the gateway uses to never
// charge twice.
//
// Charged reports whether a charge under idempotencyKey went through (a
// gateway's look-up of a payment by its key); an error means "not known".
// The processor asks it of an order it finds PROCESSING, which an attempt
// that died may have paid.
//
// Refund gives back the charge taken under idempotencyKey, once (a repeat
// returns the first refund), and voids the key: a later Charge with it is
// declined, so that a charge in flight while an order is cancelled is
// either refunded or never taken. With nothing charged, the refund gives
// nothing back (orderflow.Refund.Refunded is false). An error is transient.
type Payment interface {
	Charge(ctx context.Context, req ChargeRequest) (orderflow.Charge, error)
	Charged(ctx context.Context, idempotencyKey string) (bool, error)
	Refund(ctx context.Context, idempotencyKey string, id orderflow.OrderID) (orderflow.Refund, error)
}

// ChargeRequest asks a payment gateway to take Amount minor units of
// Currency for an order.
type ChargeRequest struct {
	IdempotencyKey string
	OrderID        orderflow.OrderID
	Amount         int64
	Currency       string
}

// Declined is a payment gateway's business decline, such as a card
// declined for insufficient funds. Retrying does not help.
type Declined struct {
	Code   string // the gateway's decline code, e.g. "card_declined"
	Detail string
}

func (e *Declined) Error() string {
	if e.Detail == "" {
		return "payment declined: " + e.Code
	}
	return "payment declined: " + e.Code + ": " + e.Detail
}

// stage is one step of the pipeline every order passes in turn.
type stage interface {
	// pass runs o through the stage: a failure rejects the order, an
	// error is transient.
	pass(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error)
}

// step is a stage in the pipeline.
type step struct {
	label string // of order_processing_duration_seconds
	span  string // the name of its span
	step  string // what failed, in logs and in a FAILED order's detail
	stage stage
	// afterReserve: the order's stock is reserved when this stage runs,
	// so a rejection gives it back.
	afterReserve bool
	// itemsOnly: the stage has nothing to do for an order without items;
	// it is neither run nor timed for one.
	itemsOnly bool
	// cancelPoint: the order is read again before the stage runs, and a
	// cancel requested meanwhile ends it there (the payment: the one
	// stage whose effect a cancel must undo with a refund).
	cancelPoint bool
}

// pipeline is the stages in order: stock, fraud, then the payment, last
// so that a charged order has passed every other stage.
func pipeline(inv Inventory, fraud Fraud, pay Payment) []step {
	return []step{
		{label: stageInventory, span: "stage " + stageInventory, step: "reserve stock", stage: reserveStage{inv}, itemsOnly: true},
		{label: stageFraud, span: "stage " + stageFraud, step: "fraud check", stage: fraudStage{fraud}, afterReserve: true},
		{label: stagePayment, span: "stage " + stagePayment, step: "payment", stage: paymentStage{pay}, afterReserve: true, cancelPoint: true},
	}
}

type reserveStage struct{ inv Inventory }

func (s reserveStage) pass(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	return s.inv.Reserve(ctx, o.ID, o.Items)
}

type fraudStage struct{ fraud Fraud }

func (s fraudStage) pass(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	return s.fraud.Check(ctx, o)
}

// paymentStage charges with the order id as the idempotency key.
type paymentStage struct{ pay Payment }

func (s paymentStage) pass(ctx context.Context, o orderflow.Order) (*orderflow.Failure, error) {
	_, err := s.pay.Charge(ctx, ChargeRequest{IdempotencyKey: string(o.ID), OrderID: o.ID, Amount: o.Amount, Currency: o.Currency})
	var declined *Declined
	if errors.As(err, &declined) {
		return &orderflow.Failure{Code: orderflow.ReasonPaymentDeclined, Detail: declined.Error()}, nil
	}
	return nil, err
}
