package httpapi

import (
	"time"

	"github.com/orderflow/orderflow"
)

// orderView is how an order is shown: by GET /orders/{id}, GET /orders and
// the status URL. The status URL may be shared, so it omits user_id; the
// owner's views carry the status URL itself, so that a client can follow
// each order it lists, not only the ones it just placed.
type orderView struct {
	OrderID   orderflow.OrderID `json:"order_id"`
	UserID    string            `json:"user_id,omitempty"`
	StatusURL string            `json:"status_url,omitempty"`
	Status    orderflow.Status  `json:"status"`
	Amount    int64             `json:"amount"`
	Currency  string            `json:"currency"`
	Items     []orderflow.Item  `json:"items"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	Failure   *failureView      `json:"failure,omitempty"`
	// Cancellation is set once the owner asked to cancel the order.
	Cancellation *cancellationView `json:"cancellation,omitempty"`
}

// cancellationView is the owner's cancel request and its outcome.
// RequestedBy (a user id) is shown to the owner only, like user_id: the
// status URL may be shared. CancelledAt is null until the order is
// CANCELLED (an order in work ends at its next stage boundary, and may
// end REJECTED or FAILED if a stage decided first); Refunded says that a
// charge taken before the processor saw the request was given back, under
// RefundID.
type cancellationView struct {
	RequestedBy string     `json:"requested_by,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	CancelledAt *time.Time `json:"cancelled_at"`
	Refunded    bool       `json:"refunded"`
	RefundID    string     `json:"refund_id,omitempty"`
}

func newCancellationView(o orderflow.Order, withUser bool) *cancellationView {
	c := o.Cancellation
	if c == nil {
		return nil
	}
	v := &cancellationView{RequestedAt: c.RequestedAt.UTC(), Refunded: c.RefundID != "", RefundID: c.RefundID}
	if withUser {
		v.RequestedBy = c.RequestedBy
	}
	if o.Status == orderflow.StatusCancelled {
		at := o.UpdatedAt.UTC()
		v.CancelledAt = &at
	}
	return v
}

// failureView is the reason of a REJECTED or FAILED order as problem-style
// fields (RFC 9457 vocabulary), plus the stable reason code.
type failureView struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

func newOrderView(o orderflow.Order, withUser bool) orderView {
	v := orderView{
		OrderID:   o.ID,
		Status:    o.Status,
		Amount:    o.Amount,
		Currency:  o.Currency,
		Items:     o.Items,
		CreatedAt: o.CreatedAt.UTC(),
		UpdatedAt: o.UpdatedAt.UTC(),
	}
	if withUser {
		v.UserID = o.UserID
	}
	if v.Items == nil {
		v.Items = []orderflow.Item{}
	}
	v.Cancellation = newCancellationView(o, withUser)
	if o.Status == orderflow.StatusRejected || o.Status == orderflow.StatusFailed {
		f := orderflow.Failure{Code: "unknown", Detail: "no reason was recorded"}
		if o.Failure != nil {
			f = *o.Failure
		}
		v.Failure = &failureView{
			Type:   failureType(f.Code),
			Title:  failureTitle(f.Code, o.Status),
			Detail: f.Detail,
			Code:   f.Code,
		}
	}
	return v
}
