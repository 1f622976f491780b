package processor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/storetest"
)

// fakeQueue is an in-memory queue with SQS semantics: visibility timeout,
// receive counts, and a dead-letter queue that a message enters on the
// receive after its MaxReceives-th.
type fakeQueue struct {
	vt          time.Duration
	maxReceives int

	mu         sync.Mutex
	seq        int
	main       []*fakeMsg
	dead       []*fakeMsg
	deleted    map[string]bool // message ids
	receives   int             // Receive calls
	failRecv   int             // fail this many next Receive calls
	deleteCall [][]string
	failDelete map[string]bool // message ids whose next delete fails
	visChanges []visChange
	onVis      func(visChange)
	pingErr    error
	depthErr   error
	// policyVT, if set, is the visibility timeout Policy reports instead
	// of vt, so that the processor's heartbeat can be timed apart from
	// the redelivery of a message.
	policyVT time.Duration
	// holdVisibility records visibility changes without applying them.
	holdVisibility bool
}

type fakeMsg struct {
	id        string
	body      []byte
	receives  int
	receipt   string
	visibleAt time.Time
}

type visChange struct {
	msgID   string
	timeout time.Duration
}

func newFakeQueue(vt time.Duration, maxReceives int) *fakeQueue {
	return &fakeQueue{vt: vt, maxReceives: maxReceives, deleted: map[string]bool{}, failDelete: map[string]bool{}}
}

func (q *fakeQueue) Send(_ context.Context, msgs ...orderflow.Message) error {
	for _, m := range msgs {
		q.SendRaw(orderflow.EncodeMessage(m))
	}
	return nil
}

// SendRaw enqueues body as it is and returns the message id.
func (q *fakeQueue) SendRaw(body []byte) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	id := fmt.Sprintf("m%d", q.seq)
	q.main = append(q.main, &fakeMsg{id: id, body: bytes.Clone(body)})
	return id
}

func (q *fakeQueue) Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	q.mu.Lock()
	q.receives++
	if q.failRecv > 0 {
		q.failRecv--
		q.mu.Unlock()
		return nil, orderflow.Unavailable(errors.New("connection refused"), "queue unreachable")
	}
	q.mu.Unlock()
	deadline := time.Now().Add(wait)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ds := q.take(max); len(ds) > 0 {
			return ds, nil
		}
		if time.Now().After(deadline) {
			return nil, nil
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (q *fakeQueue) take(max int) []orderflow.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	var ds []orderflow.Delivery
	keep := q.main[:0]
	for _, m := range q.main {
		switch {
		case len(ds) >= max || m.visibleAt.After(now):
			keep = append(keep, m)
		case m.receives >= q.maxReceives:
			q.dead = append(q.dead, m)
		default:
			m.receives++
			m.receipt = fmt.Sprintf("%s#%d", m.id, m.receives)
			m.visibleAt = now.Add(q.vt)
			keep = append(keep, m)
			d := orderflow.Delivery{MessageID: m.id, Receipt: m.receipt, ReceiveCount: m.receives, Body: bytes.Clone(m.body)}
			d.Message, d.Err = orderflow.DecodeMessage(m.body)
			ds = append(ds, d)
		}
	}
	q.main = keep
	return ds
}

func (q *fakeQueue) find(receipt string) (int, *fakeMsg) {
	for i, m := range q.main {
		if m.receipt == receipt {
			return i, m
		}
	}
	return -1, nil
}

func (q *fakeQueue) Delete(_ context.Context, receipts ...string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleteCall = append(q.deleteCall, receipts)
	failed := map[string]error{}
	for _, rc := range receipts {
		i, m := q.find(rc)
		switch {
		case m == nil:
			failed[rc] = errors.New("receipt handle is invalid")
		case q.failDelete[m.id]:
			delete(q.failDelete, m.id)
			failed[rc] = errors.New("internal error")
		default:
			q.main = append(q.main[:i], q.main[i+1:]...)
			q.deleted[m.id] = true
		}
	}
	if len(failed) > 0 {
		return &orderflow.BatchError{Failed: failed}
	}
	return nil
}

func (q *fakeQueue) ChangeVisibility(_ context.Context, receipt string, timeout time.Duration) error {
	q.mu.Lock()
	_, m := q.find(receipt)
	if m == nil {
		q.mu.Unlock()
		return fmt.Errorf("receipt %s is stale", receipt)
	}
	if !q.holdVisibility {
		m.visibleAt = time.Now().Add(timeout)
	}
	c := visChange{msgID: m.id, timeout: timeout}
	q.visChanges = append(q.visChanges, c)
	hook := q.onVis
	q.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return nil
}

func (q *fakeQueue) Depth(context.Context) (orderflow.QueueDepth, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.depthErr != nil {
		return orderflow.QueueDepth{}, q.depthErr
	}
	d := orderflow.QueueDepth{Dead: len(q.dead)}
	now := time.Now()
	for _, m := range q.main {
		if m.visibleAt.After(now) {
			d.InFlight++
		} else {
			d.Visible++
		}
	}
	return d, nil
}

// Policy is the queue's visibility timeout and max receives.
func (q *fakeQueue) Policy(context.Context) (orderflow.QueuePolicy, error) {
	vt := q.vt
	if q.policyVT != 0 {
		vt = q.policyVT
	}
	return orderflow.QueuePolicy{VisibilityTimeout: vt, MaxReceives: q.maxReceives}, nil
}

// ListDead returns up to max dead messages, oldest first.
func (q *fakeQueue) ListDead(_ context.Context, max int) ([]orderflow.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ds []orderflow.Delivery
	for _, m := range q.dead[:min(max, len(q.dead))] {
		d := orderflow.Delivery{MessageID: m.id, ReceiveCount: m.receives, Body: bytes.Clone(m.body)}
		d.Message, d.Err = orderflow.DecodeMessage(m.body)
		ds = append(ds, d)
	}
	return ds, nil
}

// Redrive moves up to max dead messages back, visible, with their receive
// count reset.
func (q *fakeQueue) Redrive(_ context.Context, max int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, len(q.dead))
	for _, m := range q.dead[:n] {
		m.receives, m.receipt, m.visibleAt = 0, "", time.Time{}
		q.main = append(q.main, m)
	}
	q.dead = q.dead[n:]
	return n, nil
}

// Purge deletes every dead message.
func (q *fakeQueue) Purge(context.Context) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.dead)
	q.dead = nil
	return n, nil
}

func (q *fakeQueue) Ping(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pingErr
}

// state returns whether message id was deleted, is dead, and how often it
// was received.
func (q *fakeQueue) state(id string) (deleted, dead bool, receives int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.main {
		if m.id == id {
			return false, false, m.receives
		}
	}
	for _, m := range q.dead {
		if m.id == id {
			return false, true, m.receives
		}
	}
	return q.deleted[id], false, 0
}

// pending is the number of messages in the main queue.
func (q *fakeQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.main)
}

func (q *fakeQueue) receiveCalls() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.receives
}

func (q *fakeQueue) changes(msgID string) []time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ds []time.Duration
	for _, c := range q.visChanges {
		if c.msgID == msgID {
			ds = append(ds, c.timeout)
		}
	}
	return ds
}

// fakeStore is an in-memory orderflow.Store (the part the processor and
// its stages use): conditional transitions, idempotent reserve/release.
type fakeStore struct {
	mu          sync.Mutex
	orders      map[orderflow.OrderID]orderflow.Order
	stock       map[string]int
	reserved    map[orderflow.OrderID][]orderflow.Item
	outcome     map[orderflow.OrderID]*orderflow.Failure
	transitions []orderflow.Transition
	getErrs     int                        // fail this many next GetOrder calls
	failTo      map[orderflow.Status]bool  // transitions to these fail
	onGet       func(id orderflow.OrderID) // called before each GetOrder
	releaseErr  error
	reserveErr  error
	pingErr     error
	activityErr error
	starts      atomic.Int32 // StartOrder calls
	reads       atomic.Int32 // GetOrder calls
	// region, as dynamostore's Options.Region: transitions of an order of
	// another region are refused with EConflict.
	region string
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		orders:   map[orderflow.OrderID]orderflow.Order{},
		stock:    map[string]int{},
		reserved: map[orderflow.OrderID][]orderflow.Item{},
		outcome:  map[orderflow.OrderID]*orderflow.Failure{},
		failTo:   map[orderflow.Status]bool{},
	}
}

func (s *fakeStore) put(o orderflow.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[o.ID] = o
}

func (s *fakeStore) GetOrder(_ context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	s.reads.Add(1)
	s.mu.Lock()
	hook := s.onGet
	s.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErrs > 0 {
		s.getErrs--
		return orderflow.Order{}, orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	}
	o, ok := s.orders[id]
	if !ok {
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order %s not found", id)
	}
	return o, nil
}

// StartOrder is the conditional PENDING → PROCESSING transition. The read
// faults (onGet, getErrs) apply to it as to GetOrder.
func (s *fakeStore) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	s.starts.Add(1)
	s.mu.Lock()
	hook := s.onGet
	s.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	s.mu.Lock()
	if s.getErrs > 0 {
		s.getErrs--
		s.mu.Unlock()
		return orderflow.Order{}, orderflow.Unavailable(errors.New("timeout"), "store unreachable")
	}
	s.mu.Unlock()
	return s.Transition(ctx, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at})
}

func (s *fakeStore) Transition(_ context.Context, t orderflow.Transition) (orderflow.Order, error) {
	if err := t.Validate(); err != nil {
		return orderflow.Order{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failTo[t.To] {
		return orderflow.Order{}, orderflow.Unavailable(errors.New("throttled"), "store unreachable")
	}
	o, ok := s.orders[t.ID]
	if !ok {
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order %s not found", t.ID)
	}
	if s.region != "" && o.Region != "" && o.Region != s.region {
		return o, orderflow.Errorf(orderflow.EConflict, "order %s belongs to region %s", t.ID, o.Region)
	}
	if o.Status != t.From {
		return o, orderflow.Errorf(orderflow.EConflict, "order %s is %s, not %s", t.ID, o.Status, t.From)
	}
	if (t.To == orderflow.StatusCompleted && o.Cancellation != nil) || (t.To == orderflow.StatusCancelled && o.Cancellation == nil) {
		return o, orderflow.Errorf(orderflow.EConflict, "order %s: the cancellation guard refuses %s", t.ID, t.To)
	}
	if t.RefundID != "" {
		c := *o.Cancellation
		c.RefundID = t.RefundID
		o.Cancellation = &c
	}
	o.Status, o.Failure, o.UpdatedAt = t.To, t.Failure, t.At
	s.orders[t.ID] = o
	s.transitions = append(s.transitions, t)
	return o, nil
}

func (s *fakeStore) Reserve(_ context.Context, id orderflow.OrderID, items []orderflow.Item) (*orderflow.Failure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserveErr != nil {
		return nil, s.reserveErr
	}
	if f, ok := s.outcome[id]; ok {
		return f, nil
	}
	var f *orderflow.Failure
	for _, it := range items {
		have, ok := s.stock[it.SKU]
		switch {
		case !ok:
			f = &orderflow.Failure{Code: orderflow.ReasonUnknownSKU, Detail: it.SKU + " is not stocked"}
		case have < it.Quantity:
			f = &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: fmt.Sprintf("%s: %d left", it.SKU, have)}
		}
		if f != nil {
			break
		}
	}
	s.outcome[id] = f
	if f == nil {
		for _, it := range items {
			s.stock[it.SKU] -= it.Quantity
		}
		s.reserved[id] = items
	}
	return f, nil
}

func (s *fakeStore) Release(_ context.Context, id orderflow.OrderID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.releaseErr != nil {
		return s.releaseErr
	}
	for _, it := range s.reserved[id] {
		s.stock[it.SKU] += it.Quantity
	}
	delete(s.reserved, id)
	return nil
}

func (s *fakeStore) UserActivity(_ context.Context, userID string, since time.Time) (int, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activityErr != nil {
		return 0, 0, s.activityErr
	}
	n, total := 0, int64(0)
	for _, o := range s.orders {
		if o.UserID == userID && !o.CreatedAt.Before(since) {
			n++
			total += o.Amount
		}
	}
	return n, total, nil
}

func (s *fakeStore) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pingErr
}

func (s *fakeStore) order(id orderflow.OrderID) orderflow.Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders[id]
}

func (s *fakeStore) stockOf(sku string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stock[sku]
}

// fakeLedger keeps charges and attempt counts by idempotency key, like the
// gateway's database.
type fakeLedger struct {
	mu       sync.Mutex
	charges  map[string]orderflow.Charge
	attempts map[string]int
	refunds  map[string]orderflow.Refund
	err      error
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{charges: map[string]orderflow.Charge{}, attempts: map[string]int{}}
}

func (l *fakeLedger) CountAttempt(_ context.Context, key string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	l.attempts[key]++
	return l.attempts[key], nil
}

func (l *fakeLedger) RecordCharge(_ context.Context, c orderflow.Charge) (orderflow.Charge, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return orderflow.Charge{}, false, l.err
	}
	if first, ok := l.charges[c.IdempotencyKey]; ok {
		return first, true, nil
	}
	if _, voided := l.refunds[c.IdempotencyKey]; voided {
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EConflict, "key %s refunded", c.IdempotencyKey)
	}
	l.charges[c.IdempotencyKey] = c
	return c, false, nil
}

func (l *fakeLedger) RecordRefund(_ context.Context, r orderflow.Refund) (orderflow.Refund, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return orderflow.Refund{}, l.err
	}
	if l.refunds == nil {
		l.refunds = map[string]orderflow.Refund{}
	}
	if first, ok := l.refunds[r.IdempotencyKey]; ok {
		return first, nil
	}
	if c, ok := l.charges[r.IdempotencyKey]; ok {
		r.ChargeID, r.Amount, r.Currency = c.ID, c.Amount, c.Currency
	}
	l.refunds[r.IdempotencyKey] = r
	return r, nil
}

func (l *fakeLedger) LookupCharge(_ context.Context, key string) (orderflow.Charge, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return orderflow.Charge{}, false, l.err
	}
	c, ok := l.charges[key]
	return c, ok, nil
}

func (l *fakeLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.charges)
}

// TestFakeQueueKeepsTheQueueContract: the fake queue that the tests of
// injected faults run on behaves as the real queues do.
func TestFakeQueueKeepsTheQueueContract(t *testing.T) {
	storetest.TestQueue(t, func(t *testing.T, opts storetest.QueueOptions) (orderflow.Queue, orderflow.DeadLetters) {
		q := newFakeQueue(opts.VisibilityTimeout, opts.MaxReceives)
		return rawFakeQueue{q}, q
	})
}

// rawFakeQueue is the fake queue as a storetest.RawSender.
type rawFakeQueue struct{ *fakeQueue }

func (q rawFakeQueue) SendRaw(_ context.Context, body []byte) error {
	q.fakeQueue.SendRaw(body)
	return nil
}
