package httpapi

import (
	"time"

	"github.com/orderflow/orderflow"
)

// The wire types: the bodies of the API's requests and answers, as the
// handlers decode and encode them. They are exported so that clients in
// Go (the orderflow command's login and order subcommands) use the very
// same types and cannot drift from the server. openapi.json describes
// them for everyone else.

// LoginRequest is the body of POST /login. Unknown members are ignored,
// so the spec's {"user_id":"u123","amount":1} is accepted; Password is
// not needed with dev login.
type LoginRequest struct {
	UserID   string `json:"user_id"`
	Password string `json:"password,omitempty"`
}

// LoginResponse is the 200 answer of POST /login (RFC 6749 §5.1).
type LoginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "bearer"
	ExpiresIn   int64  `json:"expires_in"` // seconds
}

// OrderRequest is the body of POST /orders. Amount is in minor units of
// Currency (default orderflow.DefaultCurrency); UserID, if set, must be
// the token's subject. Decoding is strict (see decodeOrder).
type OrderRequest struct {
	UserID   string           `json:"user_id,omitempty"`
	Amount   int64            `json:"amount"`
	Currency string           `json:"currency,omitempty"`
	Items    []orderflow.Item `json:"items,omitempty"`
}

// Accepted is the 202 answer of POST /orders. writeAccepted writes it by
// hand (hotpath.go); TestAcceptedBodyIsTheWireType keeps the two equal.
type Accepted struct {
	OrderID   orderflow.OrderID `json:"order_id"`
	Status    orderflow.Status  `json:"status"` // always PENDING
	StatusURL string            `json:"status_url"`
	ExpiresAt time.Time         `json:"expires_at"` // of the status URL
}

// OrderView is how an order is shown: by GET /orders/{id}, GET /orders and
// the status URL (the status document). The status URL may be shared, so
// it omits user_id; the owner's views carry the status URL itself, so that
// a client can follow each order it lists, not only the ones it just placed.
type OrderView struct {
	OrderID   orderflow.OrderID `json:"order_id"`
	UserID    string            `json:"user_id,omitempty"`
	StatusURL string            `json:"status_url,omitempty"`
	Status    orderflow.Status  `json:"status"`
	Amount    int64             `json:"amount"`
	Currency  string            `json:"currency"`
	Items     []orderflow.Item  `json:"items"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Region is the order's home region in the AWS mode: the region whose
	// processor works it, and where it can be cancelled.
	Region  string       `json:"region,omitempty"`
	Failure *FailureView `json:"failure,omitempty"`
	// Cancellation is set once the owner asked to cancel the order.
	Cancellation *CancellationView `json:"cancellation,omitempty"`
}

// CancellationView is the owner's cancel request and its outcome.
// RequestedBy (a user id) is shown to the owner only, like user_id: the
// status URL may be shared. CancelledAt is null until the order is
// CANCELLED (an order in work ends at its next stage boundary, and may
// end REJECTED or FAILED if a stage decided first); Refunded says that a
// charge taken before the processor saw the request was given back, under
// RefundID.
type CancellationView struct {
	RequestedBy string     `json:"requested_by,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	CancelledAt *time.Time `json:"cancelled_at"`
	Refunded    bool       `json:"refunded"`
	RefundID    string     `json:"refund_id,omitempty"`
}

// FailureView is the reason of a REJECTED or FAILED order as problem-style
// fields (RFC 9457 vocabulary), plus the stable reason code.
type FailureView struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// OrderPage is the answer of GET /orders: a page of the user's orders,
// newest first. NextCursor is null on the last page; otherwise it is the
// cursor query parameter of the next page.
type OrderPage struct {
	Orders     []OrderView `json:"orders"`
	NextCursor *string     `json:"next_cursor"`
}

// Problem is an RFC 9457 problem document, the body of every error
// answer (application/problem+json).
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	Instance  string       `json:"instance"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}
