package orderflow

import "time"

// Charge is a payment taken by a gateway. IdempotencyKey is what the
// processor sent with the charge (the order id); a gateway that sees a key
// again returns the first charge instead of taking money twice.
type Charge struct {
	ID             string    `json:"charge_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	OrderID        OrderID   `json:"order_id"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	At             time.Time `json:"at"`
}

// Refund gives back the charge taken under IdempotencyKey (the order id).
// A gateway refunds a key once: a second refund returns the first. When
// nothing was charged under the key, ChargeID and Amount are empty and the
// refund voids the key instead: the gateway declines any later charge with
// it, so that a charge in flight when an order is cancelled can never go
// through unrefunded.
type Refund struct {
	ID             string    `json:"refund_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	OrderID        OrderID   `json:"order_id"`
	ChargeID       string    `json:"charge_id,omitempty"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency,omitempty"`
	At             time.Time `json:"at"`
}

// Refunded reports whether r gave money back (a charge had been taken).
func (r Refund) Refunded() bool { return r.ChargeID != "" }
