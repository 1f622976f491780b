package awsintake_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awsintake"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/logtest"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/sqsqueue"
	"github.com/orderflow/orderflow/storetest"
)

// takeover is the stores' StaleIntent (ORDERFLOW_TAKEOVER_AFTER) here.
const takeover = time.Second

// aws is one table on moto, shared by a test's subtests, and its clients.
type aws struct {
	sqs   *sqs.Client
	ddb   *dynamodb.Client
	table string
}

func newAWS(t *testing.T) *aws {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	a := &aws{
		sqs:   sqs.NewFromConfig(awstest.Config(endpoint)),
		ddb:   dynamodb.NewFromConfig(awstest.Config(endpoint)),
		table: awstest.Name("intake"),
	}
	if err := dynamostore.CreateTable(context.Background(), a.ddb, a.table); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if err := dynamostore.DeleteTable(context.Background(), a.ddb, a.table); err != nil {
			t.Errorf("DeleteTable: %v", err)
		}
	})
	return a
}

// store opens the table on the clock now.
func (a *aws) store(now func() time.Time) *dynamostore.Store {
	return dynamostore.New(a.ddb, a.table, dynamostore.Options{StaleIntent: takeover, Now: now})
}

// queue creates a fresh queue pair, deleted after t.
func (a *aws) queue(t *testing.T) *sqsqueue.Queue {
	t.Helper()
	ctx := context.Background()
	name := awstest.Name("intake")
	qurl, dlq, err := sqsqueue.CreateQueues(ctx, a.sqs, sqsqueue.QueueSpec{Name: name, DLQName: name + "-dlq", VisibilityTimeout: 30 * time.Second, MaxReceives: 3})
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	t.Cleanup(func() {
		if err := sqsqueue.DeleteQueues(context.Background(), a.sqs, qurl, dlq); err != nil {
			t.Errorf("DeleteQueues: %v", err)
		}
	})
	q, err := sqsqueue.Open(ctx, a.sqs, sqsqueue.Options{QueueURL: qurl})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return q
}

func TestIntakeContract(t *testing.T) {
	t.Parallel()
	a := newAWS(t)
	st := a.store(time.Now)
	storetest.TestIntake(t, func(t *testing.T) storetest.Intake {
		q := a.queue(t)
		return storetest.Intake{Intake: awsintake.New(st, q, awsintake.Options{}), Orders: st, Queue: q}
	})
}

// flakyQueue fails the next n Sends, as a queue that is down would.
type flakyQueue struct {
	q    *sqsqueue.Queue
	fail atomic.Int32
}

func (f *flakyQueue) Send(ctx context.Context, msgs ...orderflow.Message) error {
	if f.fail.Add(-1) >= 0 {
		return orderflow.Unavailable(errors.New("injected fault"), "sqs: send")
	}
	return f.q.Send(ctx, msgs...)
}

// parts is an Intake on moto whose sends can be made to fail, on a clock
// the test moves.
type parts struct {
	store *dynamostore.Store
	queue *sqsqueue.Queue
	fq    *flakyQueue
	in    *awsintake.Intake
	clock *awstest.Clock
}

func newParts(t *testing.T) *parts {
	t.Helper()
	a := newAWS(t)
	p := &parts{clock: awstest.NewClock(), queue: a.queue(t)}
	p.store = a.store(p.clock.Now)
	p.fq = &flakyQueue{q: p.queue}
	p.in = awsintake.New(p.store, p.fq, awsintake.Options{Now: p.clock.Now})
	return p
}

func (p *parts) order(user string, amount int64) orderflow.Order {
	now := p.clock.Now().UTC().Truncate(time.Millisecond)
	return orderflow.Order{ID: orderflow.NewOrderID(now), UserID: user, Amount: amount, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now, UpdatedAt: now}
}

func (p *parts) key(user string) orderflow.IdempotencyKey {
	return orderflow.IdempotencyKey{UserID: user, Key: awstest.Name("key"), RequestHash: "h1"}
}

// drain receives (and deletes) every message in the queue and counts them
// by order id.
func (p *parts) drain(t *testing.T) map[orderflow.OrderID]int {
	t.Helper()
	got := map[orderflow.OrderID]int{}
	for {
		ds, err := p.queue.Receive(context.Background(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			return got
		}
		for _, d := range ds {
			got[d.OrderID]++
			if err := p.queue.Delete(context.Background(), d.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestAcceptFaults injects a failure or a crash between the steps of the
// AWS write path and checks that every order ends up with exactly one
// message, or is ended, and that no key yields two orders.
func TestAcceptFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a failed send makes the retry with the key take over at once and send one message", func(t *testing.T) {
		t.Parallel()
		p := newParts(t)
		k := p.key("ann")
		first := p.order("ann", 100)
		p.fq.fail.Store(1)
		if _, _, err := p.in.Accept(ctx, first, k); orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Fatalf("Accept with the queue down: got %v, want EUnavailable", err)
		}
		got, created, err := p.in.Accept(ctx, p.order("ann", 100), k)
		if err != nil || !created || got.ID != first.ID {
			t.Fatalf("retry: got %s created=%v err=%v, want the first order %s created", got.ID, created, err, first.ID)
		}
		got, created, err = p.in.Accept(ctx, p.order("ann", 100), k)
		if err != nil || created || got.ID != first.ID {
			t.Fatalf("replay: got %s created=%v err=%v, want the first order, not created", got.ID, created, err)
		}
		if _, _, err := p.in.Accept(ctx, p.order("ann", 200), orderflow.IdempotencyKey{UserID: k.UserID, Key: k.Key, RequestHash: "h2"}); orderflow.ErrorCode(err) != orderflow.EMismatch {
			t.Errorf("same key, other request: got %v, want EMismatch", err)
		}
		if msgs := p.drain(t); len(msgs) != 1 || msgs[first.ID] != 1 {
			t.Errorf("queue holds %v, want one message for %s", msgs, first.ID)
		}
	})

	t.Run("a crash between write and send: the retry is in flight until the takeover time, then sends once", func(t *testing.T) {
		t.Parallel()
		p := newParts(t)
		k := p.key("bob")
		first := p.order("bob", 100)
		if _, err := p.store.BeginOrder(ctx, first, k); err != nil { // and then the process dies
			t.Fatal(err)
		}
		if _, _, err := p.in.Accept(ctx, p.order("bob", 100), k); orderflow.ErrorCode(err) != orderflow.EConflict {
			t.Fatalf("retry at once: got %v, want EConflict (first request in flight)", err)
		}
		p.clock.Advance(takeover + time.Millisecond)
		got, created, err := p.in.Accept(ctx, p.order("bob", 100), k)
		if err != nil || !created || got.ID != first.ID {
			t.Fatalf("retry after the takeover time: got %s created=%v err=%v, want %s", got.ID, created, err, first.ID)
		}
		if msgs := p.drain(t); len(msgs) != 1 || msgs[first.ID] != 1 {
			t.Errorf("queue holds %v, want one message for %s", msgs, first.ID)
		}
	})

	t.Run("without a key a failed send ends the order FAILED", func(t *testing.T) {
		t.Parallel()
		p := newParts(t)
		o := p.order("cid", 100)
		p.fq.fail.Store(1)
		if _, _, err := p.in.Accept(ctx, o, orderflow.IdempotencyKey{UserID: "cid"}); orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Fatalf("Accept with the queue down: got %v, want EUnavailable", err)
		}
		got, err := p.store.GetOrder(ctx, o.ID)
		if err != nil || got.Status != orderflow.StatusFailed || got.Failure == nil || got.Failure.Code != orderflow.ReasonProcessingFailed {
			t.Fatalf("order after the failed send: %+v, %v; want FAILED with reason %s", got, err, orderflow.ReasonProcessingFailed)
		}
		if !got.UpdatedAt.Equal(p.clock.Now().UTC().Truncate(time.Millisecond)) {
			t.Errorf("FAILED at %v, want the intake's clock, %v", got.UpdatedAt, p.clock.Now())
		}
		if msgs := p.drain(t); len(msgs) != 0 {
			t.Errorf("queue holds %v, want nothing", msgs)
		}
	})

	t.Run("without a key a crash between write and send is repaired by the sweeper, once", func(t *testing.T) {
		t.Parallel()
		p := newParts(t)
		o := p.order("dan", 100)
		if _, err := p.store.BeginOrder(ctx, o, orderflow.IdempotencyKey{UserID: "dan"}); err != nil { // and then the process dies
			t.Fatal(err)
		}
		sweepNow := p.clock.Now
		sw := processor.NewSweeper(processor.SweeperConfig{After: time.Minute}, p.store, p.queue, discardLogger(),
			func() time.Time { return sweepNow() })
		if n, err := sw.Sweep(ctx); err != nil || n != 0 {
			t.Errorf("sweep before the order is old: re-sent %d, %v; want 0", n, err)
		}
		p.clock.Advance(2 * time.Minute)
		sweepNow = func() time.Time { return p.clock.Now().Add(time.Second) }
		if n, err := sw.Sweep(ctx); err != nil || n < 1 {
			t.Fatalf("sweep of an old PENDING order: re-sent %d, %v; want it", n, err)
		}
		if n, err := sw.Sweep(ctx); err != nil || n != 0 {
			t.Errorf("second sweep right after: re-sent %d, %v; want 0 (claimed for a sweep period)", n, err)
		}
		if msgs := p.drain(t); msgs[o.ID] != 1 {
			t.Errorf("queue holds %v, want one message for %s", msgs, o.ID)
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// failingStore is the DynamoDB store with the writes after BeginOrder
// failing, as they do when DynamoDB goes away mid-request.
type failingStore struct {
	*dynamostore.Store
	err error
}

func (f failingStore) FinishOrder(context.Context, orderflow.IdempotencyKey, dynamostore.Begun) error {
	return f.err
}

func (f failingStore) AbandonOrder(context.Context, orderflow.IdempotencyKey, dynamostore.Begun) error {
	return f.err
}

func (f failingStore) Transition(context.Context, orderflow.Transition) (orderflow.Order, error) {
	return orderflow.Order{}, f.err
}

// TestAcceptCleanupFailures: when the write after the send, or the cleanup
// after a failed send, fails too, Accept's answer stays true and the
// failure is logged; what is left is what the takeover time and the
// sweeper repair.
func TestAcceptCleanupFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newParts(t)
	var logs logtest.Buffer
	down := orderflow.Unavailable(errors.New("injected fault"), "dynamodb: write")
	in := awsintake.New(failingStore{Store: p.store, err: down}, p.fq, awsintake.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: p.clock.Now})

	k := p.key("eve")
	o := p.order("eve", 100)
	got, created, err := in.Accept(ctx, o, k)
	if err != nil || !created || got.ID != o.ID {
		t.Fatalf("Accept with the key's record not marked done: %s created=%v, %v; want %s accepted (order and message are in)", got.ID, created, err, o.ID)
	}
	if msgs := p.drain(t); len(msgs) != 1 || msgs[o.ID] != 1 {
		t.Errorf("queue holds %v, want one message for %s", msgs, o.ID)
	}
	if len(logs.Messages("order accepted but its idempotency key not marked done")) != 1 {
		t.Errorf("logs %s, want the warning that the key is not marked done", logs.String())
	}

	k2 := p.key("eve")
	p.fq.fail.Store(1)
	if _, _, err := in.Accept(ctx, p.order("eve", 100), k2); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Accept with the queue down: %v, want EUnavailable", err)
	}
	if _, _, err := p.in.Accept(ctx, p.order("eve", 100), k2); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("retry at once after the key's record could not be made stale: %v, want EConflict (in flight until the takeover time)", err)
	}
	if len(logs.Messages("order message not sent; its idempotency key stays in flight until the takeover time")) != 1 {
		t.Errorf("logs %s, want the warning that the key stays in flight", logs.String())
	}

	bare := p.order("eve", 100)
	p.fq.fail.Store(1)
	if _, _, err := in.Accept(ctx, bare, orderflow.IdempotencyKey{UserID: "eve"}); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Accept without a key with the queue down: %v, want EUnavailable", err)
	}
	if o, err := p.store.GetOrder(ctx, bare.ID); err != nil || o.Status != orderflow.StatusPending {
		t.Errorf("order not sent and not ended: %s, %v; want it PENDING, for the sweeper", o.Status, err)
	}
	if len(logs.Messages("order message not sent and the order not ended; the sweeper will process it")) != 1 {
		t.Errorf("logs %s, want the error that the order is left to the sweeper", logs.String())
	}
}
