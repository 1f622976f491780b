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
