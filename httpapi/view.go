package httpapi

import (
	"github.com/orderflow/orderflow"
)

func newCancellationView(o orderflow.Order, withUser bool) *CancellationView {
	c := o.Cancellation
	if c == nil {
		return nil
	}
	v := &CancellationView{RequestedAt: c.RequestedAt.UTC(), Refunded: c.RefundID != "", RefundID: c.RefundID}
	if withUser {
		v.RequestedBy = c.RequestedBy
	}
	if o.Status == orderflow.StatusCancelled {
		at := o.UpdatedAt.UTC()
		v.CancelledAt = &at
	}
	return v
}

func newOrderView(o orderflow.Order, withUser bool) OrderView {
	v := OrderView{
		OrderID:   o.ID,
		Status:    o.Status,
		Amount:    o.Amount,
		Currency:  o.Currency,
		Items:     o.Items,
		CreatedAt: o.CreatedAt.UTC(),
		UpdatedAt: o.UpdatedAt.UTC(),
		Region:    o.Region,
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
		v.Failure = &FailureView{
			Type:   failureType(f.Code),
			Title:  failureTitle(f.Code, o.Status),
			Detail: f.Detail,
			Code:   f.Code,
		}
	}
	return v
}
