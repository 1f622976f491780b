package processor

import (
	"context"
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
}

// Store is the part of orderflow.Store the processor uses.
type Store interface {
	GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error)
	Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error)
	Ping(ctx context.Context) error
}

// OrderStarter is an optional fast path of a Store, for stores where a
// conditional write costs no more than a read (the embedded SQLite store,
// where both go through one process). When the Store implements it, the
// processor starts an order with one call instead of GetOrder followed by
// a PENDING → PROCESSING Transition.
type OrderStarter interface {
	// StartOrder moves order id from PENDING to PROCESSING (updated at
	// at) and returns it as stored afterwards. An order in another status
	// is returned unchanged with an EConflict error; ENotFound if there is
	// no such order; EUnavailable when the store cannot be reached.
	StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error)
}

// ReceiveStarter is an optional fast path of a Queue that keeps its
// messages in the same database as the orders (the embedded SQLite store).
// The processor uses it only when its Queue and Store are the same value.
// ReceiveAndStart is Receive, and in the same write it moves the order of
// each well-formed message from PENDING to PROCESSING and returns it in
// the delivery (Delivery.Order, Delivery.Started), sparing the processor
// a StartOrder call per order. A delivery without Order (a poison message,
// an order not found) goes the usual way.
type ReceiveStarter interface {
	ReceiveAndStart(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error)
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
type Payment interface {
	Charge(ctx context.Context, req ChargeRequest) (orderflow.Charge, error)
	Charged(ctx context.Context, idempotencyKey string) (bool, error)
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
