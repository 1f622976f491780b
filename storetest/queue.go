package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// QueueOptions configures the queue a TestQueue subtest asks for.
type QueueOptions struct {
	// VisibilityTimeout is how long a received message stays hidden.
	VisibilityTimeout time.Duration
	// MaxReceives is how many receives a message gets before the next
	// receive moves it to the dead-letter queue.
	MaxReceives int
}

// RawSender is implemented by queues that can enqueue an arbitrary body. The
// poison-message subtest uses it and is skipped for queues without it.
type RawSender interface {
	SendRaw(ctx context.Context, body []byte) error
}

// NewQueueFunc returns a fresh, empty queue with its dead-letter queue,
// configured by opts. It registers its own cleanup with t.Cleanup.
type NewQueueFunc func(t *testing.T, opts QueueOptions) (orderflow.Queue, orderflow.DeadLetters)

// Long enough that a message received in a test never reappears by itself.
const longVisibility = 30 * time.Second

// TestQueue runs the queue contract against the queues newQueue makes. Each
// subtest asks for its own queue.
func TestQueue(t *testing.T, newQueue func(t *testing.T, opts QueueOptions) (orderflow.Queue, orderflow.DeadLetters)) {
	t.Helper()
	q := queueSuite{newQueue: newQueue}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"send then receive returns the decoded message with receive count 1", q.sendReceive},
		{"received message stays hidden until the visibility timeout, then comes back with receive count 2", q.redelivery},
		{"delete removes the message for good", q.deleteRemoves},
		{"delete of an unknown receipt fails in a BatchError without affecting the others", q.deleteUnknown},
		{"change visibility to zero makes the message visible at once", q.changeVisibilityZero},
		{"change visibility extends invisibility", q.changeVisibilityExtends},
		{"change visibility of an unknown receipt fails", q.changeVisibilityUnknown},
		{"receive returns at most max messages", q.receiveMax},
		{"receive with wait returns early when a message arrives", q.receiveWaitWakes},
		{"receive with wait returns empty when nothing arrives", q.receiveWaitEmpty},
		{"after max receives the message goes to the dead-letter queue", q.deadLetter},
		{"redrive moves dead messages back with the receive count reset", q.redrive},
		{"purge empties the dead-letter queue", q.purge},
		{"depth counts visible, in-flight and dead messages", q.depth},
		{"concurrent sends lose nothing and duplicate nothing", q.concurrentSend},
		{"a poison body is delivered with Err set", q.poison},
		{"ping succeeds", q.ping},
		{"policy is the visibility timeout and max receives the queue was made with", q.policy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

type queueSuite struct {
	newQueue NewQueueFunc
}

func (s queueSuite) open(t *testing.T, vt time.Duration, maxReceives int) (orderflow.Queue, orderflow.DeadLetters) {
	t.Helper()
	return s.newQueue(t, QueueOptions{VisibilityTimeout: vt, MaxReceives: maxReceives})
}

func (s queueSuite) policy(t *testing.T) {
	want := orderflow.QueuePolicy{VisibilityTimeout: 7 * time.Second, MaxReceives: 3}
	q, _ := s.open(t, want.VisibilityTimeout, want.MaxReceives)
	got, err := q.Policy(testCtx(t))
	if err != nil || got != want {
		t.Errorf("Policy() = %+v, %v; want %+v", got, err, want)
	}
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newMessage returns a message with a fresh order id and a request id that
// names it.
func newMessage(name string) orderflow.Message {
	return orderflow.Message{OrderID: orderflow.NewOrderID(time.Now()), RequestID: "req-" + name}
}

func send(t *testing.T, q orderflow.Queue, msgs ...orderflow.Message) {
	t.Helper()
	if err := q.Send(testCtx(t), msgs...); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// receiveN receives until it has n messages or the deadline passes.
func receiveN(t *testing.T, q orderflow.Queue, n int, within time.Duration) []orderflow.Delivery {
	t.Helper()
	ctx := testCtx(t)
	var got []orderflow.Delivery
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		ds, err := q.Receive(ctx, min(n-len(got), 10), time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		got = append(got, ds...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages within %v, want %d", len(got), within, n)
	}
	return got
}

// receiveNone checks that a receive waiting up to wait returns nothing.
func receiveNone(t *testing.T, q orderflow.Queue, wait time.Duration) {
	t.Helper()
	ds, err := q.Receive(testCtx(t), 10, wait)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(ds) != 0 {
		t.Fatalf("Receive returned %d messages (first %+v), want none", len(ds), ds[0].Message)
	}
}

func deleteAll(t *testing.T, q orderflow.Queue, ds ...orderflow.Delivery) {
	t.Helper()
	receipts := make([]string, len(ds))
	for i, d := range ds {
		receipts[i] = d.Receipt
	}
	if err := q.Delete(testCtx(t), receipts...); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

func (s queueSuite) sendReceive(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	m := newMessage("send-receive")
	m.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	send(t, q, m)
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if d.Err != nil {
		t.Fatalf("Delivery.Err = %v, want nil", d.Err)
	}
	if d.Message != m {
		t.Errorf("got message %+v, want %+v", d.Message, m)
	}
	if d.ReceiveCount != 1 {
		t.Errorf("got ReceiveCount %d, want 1", d.ReceiveCount)
	}
	if d.MessageID == "" || d.Receipt == "" {
		t.Errorf("got MessageID %q Receipt %q, want both set", d.MessageID, d.Receipt)
	}
	if got, err := orderflow.DecodeMessage(d.Body); err != nil || got != m {
		t.Errorf("Body decodes to %+v, %v; want %+v", got, err, m)
	}
}

func (s queueSuite) redelivery(t *testing.T) {
	q, _ := s.open(t, time.Second, 5)
	m := newMessage("redelivery")
	send(t, q, m)
	first := receiveN(t, q, 1, 10*time.Second)[0]
	receiveNone(t, q, 0)
	second := receiveN(t, q, 1, 10*time.Second)[0]
	if second.Message != m {
		t.Errorf("redelivered %+v, want %+v", second.Message, m)
	}
	if second.ReceiveCount != 2 {
		t.Errorf("got ReceiveCount %d on redelivery, want 2", second.ReceiveCount)
	}
	if second.MessageID != first.MessageID {
		t.Errorf("got MessageID %q on redelivery, want %q (stable)", second.MessageID, first.MessageID)
	}
	if second.Receipt == first.Receipt {
		t.Errorf("receipt %q did not change between receives", second.Receipt)
	}
	deleteAll(t, q, second)
}

func (s queueSuite) deleteRemoves(t *testing.T) {
	q, _ := s.open(t, time.Second, 5)
	send(t, q, newMessage("delete"))
	d := receiveN(t, q, 1, 10*time.Second)[0]
	deleteAll(t, q, d)
	// Past the visibility timeout a message that was not deleted would be back.
	receiveNone(t, q, 2*time.Second)
}

func (s queueSuite) deleteUnknown(t *testing.T) {
	q, _ := s.open(t, time.Second, 5)
	send(t, q, newMessage("delete-unknown"))
	d := receiveN(t, q, 1, 10*time.Second)[0]
	const unknown = "no-such-receipt"
	err := q.Delete(testCtx(t), unknown, d.Receipt)
	var be *orderflow.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Delete with an unknown receipt: got %v, want a *orderflow.BatchError", err)
	}
	if len(be.Failed) != 1 || be.Failed[unknown] == nil {
		t.Errorf("got failed entries %v, want exactly %q", be.Failed, unknown)
	}
	// The valid receipt in the same call was deleted: it does not come back.
	receiveNone(t, q, 2*time.Second)
}

func (s queueSuite) changeVisibilityZero(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	m := newMessage("visibility-zero")
	send(t, q, m)
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if err := q.ChangeVisibility(testCtx(t), d.Receipt, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	again := receiveN(t, q, 1, 10*time.Second)[0]
	if again.Message != m || again.ReceiveCount != 2 {
		t.Errorf("got %+v with ReceiveCount %d, want %+v with 2", again.Message, again.ReceiveCount, m)
	}
}

func (s queueSuite) changeVisibilityExtends(t *testing.T) {
	q, _ := s.open(t, time.Second, 5)
	send(t, q, newMessage("visibility-extend"))
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if err := q.ChangeVisibility(testCtx(t), d.Receipt, longVisibility); err != nil {
		t.Fatalf("ChangeVisibility: %v", err)
	}
	// Without the extension the message would be back after one second.
	receiveNone(t, q, 3*time.Second)
	deleteAll(t, q, d)
}

func (s queueSuite) changeVisibilityUnknown(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	send(t, q, newMessage("visibility-unknown"))
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if err := q.ChangeVisibility(testCtx(t), "no-such-receipt", 0); err == nil {
		t.Errorf("ChangeVisibility of an unknown receipt: got nil error, want one")
	}
	deleteAll(t, q, d)
}

func (s queueSuite) receiveMax(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	var msgs []orderflow.Message
	for i := range 5 {
		msgs = append(msgs, newMessage(fmt.Sprint("max-", i)))
	}
	send(t, q, msgs...)
	ds, err := q.Receive(testCtx(t), 2, time.Second)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(ds) == 0 || len(ds) > 2 {
		t.Fatalf("Receive(max 2) returned %d messages, want 1 or 2", len(ds))
	}
	rest := receiveN(t, q, 5-len(ds), 15*time.Second)
	seen := map[orderflow.OrderID]bool{}
	for _, d := range append(ds, rest...) {
		seen[d.OrderID] = true
	}
	for _, m := range msgs {
		if !seen[m.OrderID] {
			t.Errorf("message %s was never received", m.OrderID)
		}
	}
}

func (s queueSuite) receiveWaitWakes(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	m := newMessage("wake")
	type result struct {
		ds      []orderflow.Delivery
		err     error
		elapsed time.Duration
	}
	// The message is sent once the receive has begun, and the receive
	// must return it well before its long wait ends.
	const wait = 10 * time.Second
	begun := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		close(begun)
		start := time.Now()
		ds, err := q.Receive(testCtx(t), 10, wait)
		done <- result{ds, err, time.Since(start)}
	}()
	<-begun
	send(t, q, m)
	r := <-done
	if r.err != nil {
		t.Fatalf("Receive: %v", r.err)
	}
	if len(r.ds) != 1 || r.ds[0].Message != m {
		t.Fatalf("got %d messages %+v, want exactly %+v", len(r.ds), r.ds, m)
	}
	if r.elapsed > wait/2 {
		t.Errorf("Receive returned after %s, want well before its wait of %s ends", r.elapsed, wait)
	}
}

func (s queueSuite) receiveWaitEmpty(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	receiveNone(t, q, time.Second)
}

// deadLetterOne sends m and receives it maxReceives times (making it visible
// again at once after each), so that the next receive dead-letters it.
func deadLetterOne(t *testing.T, q orderflow.Queue, dl orderflow.DeadLetters, m orderflow.Message, maxReceives int) {
	t.Helper()
	send(t, q, m)
	for i := 1; i <= maxReceives; i++ {
		d := receiveN(t, q, 1, 10*time.Second)[0]
		if d.ReceiveCount != i {
			t.Fatalf("receive %d: got ReceiveCount %d", i, d.ReceiveCount)
		}
		if err := q.ChangeVisibility(testCtx(t), d.Receipt, 0); err != nil {
			t.Fatalf("ChangeVisibility(0): %v", err)
		}
	}
	receiveNone(t, q, time.Second)
	waitDead(t, dl, m.OrderID)
}

// waitDead waits until ListDead shows the message for id and returns it.
func waitDead(t *testing.T, dl orderflow.DeadLetters, id orderflow.OrderID) orderflow.Delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds, err := dl.ListDead(testCtx(t), 10)
		if err != nil {
			t.Fatalf("ListDead: %v", err)
		}
		for _, d := range ds {
			if d.OrderID == id {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListDead does not show message for order %s; got %d others", id, len(ds))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s queueSuite) deadLetter(t *testing.T) {
	q, dl := s.open(t, longVisibility, 2)
	m := newMessage("dead")
	deadLetterOne(t, q, dl, m, 2)
	d := waitDead(t, dl, m.OrderID)
	if d.Message != m {
		t.Errorf("dead message %+v, want %+v", d.Message, m)
	}
	receiveNone(t, q, time.Second)
}

func (s queueSuite) redrive(t *testing.T) {
	q, dl := s.open(t, longVisibility, 1)
	m := newMessage("redrive")
	deadLetterOne(t, q, dl, m, 1)
	n, err := dl.Redrive(testCtx(t), 10)
	if err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if n != 1 {
		t.Errorf("Redrive moved %d, want 1", n)
	}
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if d.Message != m || d.ReceiveCount != 1 {
		t.Errorf("after redrive got %+v with ReceiveCount %d, want %+v with 1", d.Message, d.ReceiveCount, m)
	}
	ds, err := dl.ListDead(testCtx(t), 10)
	if err != nil {
		t.Fatalf("ListDead: %v", err)
	}
	if len(ds) != 0 {
		t.Errorf("ListDead after redrive shows %d messages, want none", len(ds))
	}
	deleteAll(t, q, d)
}

func (s queueSuite) purge(t *testing.T) {
	q, dl := s.open(t, longVisibility, 1)
	deadLetterOne(t, q, dl, newMessage("purge"), 1)
	n, err := dl.Purge(testCtx(t))
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n != 1 {
		t.Errorf("Purge deleted %d, want 1", n)
	}
	ds, err := dl.ListDead(testCtx(t), 10)
	if err != nil {
		t.Fatalf("ListDead: %v", err)
	}
	if len(ds) != 0 {
		t.Errorf("ListDead after purge shows %d messages, want none", len(ds))
	}
}

// waitDepth waits until Depth reports want; SQS counts are approximate and lag.
func waitDepth(t *testing.T, q orderflow.Queue, want orderflow.QueueDepth) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := q.Depth(testCtx(t))
		if err != nil {
			t.Fatalf("Depth: %v", err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got depth %+v, want %+v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s queueSuite) depth(t *testing.T) {
	q, dl := s.open(t, longVisibility, 1)
	waitDepth(t, q, orderflow.QueueDepth{})
	deadLetterOne(t, q, dl, newMessage("depth-dead"), 1)
	send(t, q, newMessage("depth-1"), newMessage("depth-2"), newMessage("depth-3"))
	receiveN(t, q, 1, 10*time.Second)
	waitDepth(t, q, orderflow.QueueDepth{Visible: 2, InFlight: 1, Dead: 1})
}

func (s queueSuite) concurrentSend(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	const senders, each = 16, 20
	want := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		batch := make([]orderflow.Message, each)
		for i := range batch {
			batch[i] = newMessage(fmt.Sprintf("concurrent-%d-%d", g, i))
			want[batch[i].RequestID] = true
		}
		wg.Go(func() {
			// Half the senders send one message per call, half in one call.
			if g%2 == 0 {
				errs <- q.Send(testCtx(t), batch...)
				return
			}
			for _, m := range batch {
				if err := q.Send(testCtx(t), m); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	got := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		ds, err := q.Receive(testCtx(t), 10, time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		for _, d := range ds {
			got[d.RequestID]++
		}
		if len(ds) > 0 {
			deleteAll(t, q, ds...)
		}
	}
	receiveNone(t, q, time.Second)
	if len(got) != len(want) {
		t.Errorf("received %d distinct messages, want %d", len(got), len(want))
	}
	for id, n := range got {
		if !want[id] {
			t.Errorf("received unknown message %q", id)
		}
		if n != 1 {
			t.Errorf("message %q received %d times, want once", id, n)
		}
	}
}

func (s queueSuite) poison(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	raw, ok := q.(RawSender)
	if !ok {
		t.Skip("queue cannot send raw bodies")
	}
	body := []byte(`{"order_id": 42, "ammount": "x"`)
	if err := raw.SendRaw(testCtx(t), body); err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	d := receiveN(t, q, 1, 10*time.Second)[0]
	if d.Err == nil {
		t.Errorf("poison delivery has Err nil, want a decode error")
	}
	if orderflow.ErrorCode(d.Err) != orderflow.EInvalid {
		t.Errorf("poison delivery error code %q, want %q", orderflow.ErrorCode(d.Err), orderflow.EInvalid)
	}
	if !bytes.Equal(d.Body, body) {
		t.Errorf("got body %q, want %q", d.Body, body)
	}
	if d.ReceiveCount != 1 || d.Receipt == "" {
		t.Errorf("got ReceiveCount %d Receipt %q, want 1 and a receipt", d.ReceiveCount, d.Receipt)
	}
	deleteAll(t, q, d)
}

func (s queueSuite) ping(t *testing.T) {
	q, _ := s.open(t, longVisibility, 5)
	if err := q.Ping(testCtx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
