package orderflow

import (
	"context"
	"fmt"
	"time"
)

// Paging limits of Store.ListOrders.
const (
	DefaultListLimit = 20
	MaxListLimit     = 1000
)

// MinIdempotencyTTL is how long an idempotency record is kept at least
// (and by default): a client may retry a request for a day.
const MinIdempotencyTTL = 24 * time.Hour

// IdempotencyKey is a client's Idempotency-Key, scoped to its user, with a
// hash of the request it first came with. Records are kept at least
// MinIdempotencyTTL.
type IdempotencyKey struct {
	UserID      string
	Key         string
	RequestHash string
}

// Intake accepts orders: it stores a new order and queues its message, so
// that an order the caller was told is accepted is worked exactly once.
// It is the api's write path; the embedded store does it in one SQLite
// transaction, the AWS mode across DynamoDB and SQS. Implementations are
// safe for concurrent use.
type Intake interface {
	// Accept stores o, which must be PENDING, and queues its message.
	// created reports that this call accepted it; stored is the order as
	// stored. The idempotency rules, with key.Key set (scoped to
	// key.UserID):
	//   - a key not seen before: o is accepted, and the key records
	//     key.RequestHash and o's id;
	//   - the key with the same RequestHash, its first request finished:
	//     nothing is written or queued; the original order comes back
	//     with created=false;
	//   - the key with another RequestHash: EMismatch;
	//   - the key with its first request still in flight: EConflict
	//     (an implementation that cannot tell a dead first request from a
	//     slow one may take over a record older than its takeover time
	//     and finish the original order).
	// Without a key every call accepts a new order. Nothing is accepted
	// without its message: when the message cannot be queued, the error
	// is EUnavailable and a retry with the same key accepts the order
	// (once). EUnavailable also when a backing service cannot be reached.
	Accept(ctx context.Context, o Order, key IdempotencyKey) (stored Order, created bool, err error)
}

// Store keeps orders and stock: what the api reads and the processor
// changes. Orders come in through an Intake; stock is seeded by the
// program's start (each adapter has its own SetStock). Implementations are
// safe for concurrent use. Every method returns an *Error with code
// EUnavailable when the backing service cannot be reached, so that callers
// can tell "retry later" from a bug.
type Store interface {
	// GetOrder returns the order, or ENotFound.
	GetOrder(ctx context.Context, id OrderID) (Order, error)

	// ListOrders returns up to limit orders of userID, newest first,
	// starting after the cursor (an order id; "" for the first page). A
	// limit of 0 or less is DefaultListLimit; above MaxListLimit it is
	// MaxListLimit.
	ListOrders(ctx context.Context, userID string, cursor OrderID, limit int) ([]Order, error)

	// Transition applies t only if the order is in t.From (a conditional
	// write) and returns the order as stored afterwards. If the order is in
	// another status the error code is EConflict and the returned order is
	// the current one; ENotFound if there is no such order.
	Transition(ctx context.Context, t Transition) (Order, error)

	// RequestCancel records by's request (at at) to cancel order id, in
	// one conditional write, and returns the order as stored afterwards:
	//   - PENDING: the order is CANCELLED at once, the request recorded;
	//   - PROCESSING: the request is recorded (the first one is kept) and
	//     the order stays PROCESSING for the processor to end;
	//   - CANCELLED: nothing changes (a repeated request);
	//   - COMPLETED, REJECTED, FAILED: EConflict, with the current order.
	// ENotFound if there is no such order. Whether by may cancel it (the
	// owner) is the caller's to check.
	RequestCancel(ctx context.Context, id OrderID, by string, at time.Time) (Order, error)

	// Reserve takes the items of order id from stock, all or nothing; the
	// items are a valid order's (Order.Validate: each SKU once). It is
	// idempotent per order: a second call for the same order changes
	// nothing and returns the first outcome. A business decline (a SKU not
	// stocked, or not enough of it) is returned as a *Failure with
	// ReasonUnknownSKU or ReasonOutOfStock, and err nil. After a Release
	// the next call takes the same lines again (or declines with
	// ReasonOutOfStock if they cannot be served now): a worker that
	// released and died before ending the order leaves it to an attempt
	// that must hold its stock when it completes it.
	Reserve(ctx context.Context, id OrderID, items []Item) (*Failure, error)

	// Release gives back what Reserve took for order id. Idempotent; a
	// no-op when nothing is reserved.
	Release(ctx context.Context, id OrderID) error

	// UserActivity returns how many orders userID created at or after
	// since, and their total amount (all currencies added, in minor units).
	UserActivity(ctx context.Context, userID string, since time.Time) (count int, total int64, err error)

	// Ping checks that the store can be reached and can commit a write
	// (readiness), from the outcome of its recent writes or a cheap probe.
	// Callers that ask often (readiness probes) ask through a CachedCheck.
	Ping(ctx context.Context) error
}

// Message is what the queue carries for one order.
type Message struct {
	OrderID     OrderID `json:"order_id"`
	RequestID   string  `json:"request_id,omitempty"`
	TraceParent string  `json:"traceparent,omitempty"`
}

// Delivery is a message handed out by Receive. While it is in flight it is
// invisible to other receivers until the visibility timeout passes.
type Delivery struct {
	Message
	// MessageID is the queue's id of the message (stable across receives).
	MessageID string
	// Receipt identifies this receive for Delete and ChangeVisibility.
	Receipt string
	// ReceiveCount is 1 on the first delivery.
	ReceiveCount int
	// Body is the raw message body.
	Body []byte
	// Err is set when Body could not be decoded into Message (a poison
	// message); it is left for the dead-letter path.
	Err error
}

// QueueDepth is the approximate number of messages in a queue.
type QueueDepth struct {
	Visible  int // waiting to be received
	InFlight int // received and not yet deleted
	Dead     int // in the dead-letter queue
}

// QueuePolicy is how a queue redelivers. The queue owns it (SQS: the
// queue's VisibilityTimeout and RedrivePolicy attributes; the embedded
// queue: its options) and its consumers read it from there, so that the
// two can never disagree.
type QueuePolicy struct {
	// VisibilityTimeout is how long a received message stays hidden.
	VisibilityTimeout time.Duration
	// MaxReceives is how many receives a message gets: the receive with
	// ReceiveCount == MaxReceives is its last, and the queue moves it to
	// the dead-letter queue instead of delivering it again.
	MaxReceives int
}

// Queue is an at-least-once queue with SQS semantics: a received message
// is hidden for the visibility timeout and comes back if not deleted; each
// receive counts, and a message that was received MaxReceives times is
// moved to the dead-letter queue instead of delivered again (see
// QueuePolicy).
// Implementations are safe for concurrent use and return EUnavailable when
// the service cannot be reached.
type Queue interface {
	// Send enqueues msgs. Concurrent calls may be coalesced into batches.
	Send(ctx context.Context, msgs ...Message) error

	// Receive waits up to wait for messages and returns at most max.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Delivery, error)

	// Delete acknowledges the given receipts. If some fail, the error is a
	// *BatchError listing them; the others are deleted.
	Delete(ctx context.Context, receipts ...string) error

	// ChangeVisibility hides the message for timeout from now (0 makes it
	// visible at once). It fails if the receipt is stale.
	ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error

	// Depth reports approximate message counts.
	Depth(ctx context.Context) (QueueDepth, error)

	// Ping checks that the queue can be reached.
	Ping(ctx context.Context) error

	// Policy returns the queue's redelivery policy. An implementation
	// that must ask its service for it does so once and keeps the answer;
	// EUnavailable while it cannot be reached.
	Policy(ctx context.Context) (QueuePolicy, error)
}

// DeadLetters is the operator's view of the dead-letter queue.
type DeadLetters interface {
	// ListDead returns up to max dead messages without removing them.
	ListDead(ctx context.Context, max int) ([]Delivery, error)
	// Redrive moves up to max dead messages back to the main queue with
	// their receive count reset, and returns how many moved.
	Redrive(ctx context.Context, max int) (int, error)
	// Purge deletes every dead message and returns how many were deleted.
	Purge(ctx context.Context) (int, error)
}

// BatchError reports the entries of a batch call that failed.
type BatchError struct {
	Failed map[string]error // by receipt or entry id
}

func (e *BatchError) Error() string {
	for id, err := range e.Failed {
		return fmt.Sprintf("batch: %d entries failed, e.g. %s: %v", len(e.Failed), id, err)
	}
	return "batch: no entries failed"
}
