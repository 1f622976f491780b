package sqlite

import (
	"context"
	"sync"
	"time"

	"github.com/orderflow/orderflow"
)

// WorkQueue is the database as the processor's queue and store in one, for
// a processor that works the orders stored in this same database. Its
// Receive is the DB's, and in the write that hands out the messages it
// also moves the order of each from PENDING to PROCESSING; its StartOrder
// answers for an order that a receive started from what that receive
// recorded, without a write of its own, and is the DB's StartOrder for any
// other. To its caller it is a queue and a store like any other: the
// answers are those a plain Receive followed by StartOrder would give.
// Safe for concurrent use.
type WorkQueue struct {
	*DB
	started startedOrders
}

// WorkQueue returns db as the processor's queue and store.
func (db *DB) WorkQueue() *WorkQueue {
	return &WorkQueue{DB: db, started: startedOrders{limit: maxStarted, orders: map[orderflow.OrderID]orderflow.Order{}}}
}

// Receive is DB.Receive that also starts the orders of the messages it
// hands out (see WorkQueue).
func (q *WorkQueue) Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	return q.receive(ctx, max, wait, &q.started)
}

// StartOrder is DB.StartOrder; for an order a receive started, it returns
// the order as that receive stored it.
func (q *WorkQueue) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	if o, ok := q.started.take(id); ok {
		return o, nil
	}
	return q.DB.StartOrder(ctx, id, at)
}

// maxStarted bounds the orders a WorkQueue holds for StartOrder: beyond
// it, a receive leaves the orders it hands out for StartOrder to start.
// The processor asks for each soon after the receive, so it holds about
// as many as the processor has in work.
const maxStarted = 1024

// startedOrders are the orders receives started and StartOrder was not
// yet asked for, by id.
type startedOrders struct {
	mu       sync.Mutex
	limit    int // maxStarted
	orders   map[orderflow.OrderID]orderflow.Order
	reserved int // room promised to receives in progress
}

// startBatch is what one receive did to the orders it handed out.
type startBatch struct {
	started []orderflow.Order   // moved to PROCESSING
	seen    []orderflow.OrderID // handed out and not started
}

func (b startBatch) reset() startBatch {
	return startBatch{started: b.started[:0], seen: b.seen[:0]}
}

// reserve promises a receive room for up to n started orders; a nil s
// (a plain receive) has none.
func (s *startedOrders) reserve(n int) int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := max(0, min(n, s.limit-len(s.orders)-s.reserved))
	s.reserved += k
	return k
}

// commit ends a receive that reserved room: if its write committed, it
// records the orders it started and forgets what is recorded for the
// others it handed out (their new receive supersedes it).
func (s *startedOrders) commit(reserved int, b startBatch, committed bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved -= reserved
	if !committed {
		return
	}
	for _, id := range b.seen {
		delete(s.orders, id)
	}
	for _, o := range b.started {
		s.orders[o.ID] = o
	}
}

// take returns and forgets the order recorded for id.
func (s *startedOrders) take(id orderflow.OrderID) (orderflow.Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if ok {
		delete(s.orders, id)
	}
	return o, ok
}
