package sqsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqsqueue"
	"github.com/orderflow/orderflow/storetest"
)

func TestOpenNeedsADeadLetterQueue(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		ctx := testCtx(t)
		out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("bare"))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sqsqueue.DeleteQueues(context.Background(), client, aws.ToString(out.QueueUrl)) })
		if _, err := sqsqueue.Open(ctx, client, sqsqueue.Options{QueueURL: aws.ToString(out.QueueUrl)}); orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("Open of a queue without RedrivePolicy: got %v, want EInvalid", err)
		}
		if _, err := sqsqueue.Open(ctx, client, sqsqueue.Options{}); orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("Open without a URL: got %v, want EInvalid", err)
		}
		if _, _, err := sqsqueue.CreateQueues(ctx, client, sqsqueue.QueueSpec{Name: "x"}); err == nil {
			t.Error("CreateQueues without a DLQ name: got no error")
		}
	})
}

func TestCreateQueuesIsIdempotent(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		spec := sqsqueue.QueueSpec{Name: awstest.Name("idem"), VisibilityTimeout: time.Second, MaxReceives: 2}
		spec.DLQName = spec.Name + "-dlq"
		q1, d1, err := sqsqueue.CreateQueues(testCtx(t), client, spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sqsqueue.DeleteQueues(context.Background(), client, q1, d1) })
		spec.MaxReceives = 3
		q2, d2, err := sqsqueue.CreateQueues(testCtx(t), client, spec)
		if err != nil || q1 != q2 || d1 != d2 {
			t.Errorf("second CreateQueues: %s %s %v; want %s %s", q2, d2, err, q1, d1)
		}
	})
}

// TestMessageAttributes: the request id and trace context ride as message
// attributes beside the body.
func TestMessageAttributes(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		q := newQueue(t, client, storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 5})
		ctx := testCtx(t)
		m := orderflow.Message{OrderID: orderflow.NewOrderID(time.Now()), RequestID: "req-attr", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		if err := q.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL()), MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 2})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("ReceiveMessage: %v, %d messages", err, len(out.Messages))
		}
		attrs := out.Messages[0].MessageAttributes
		if aws.ToString(attrs["request_id"].StringValue) != m.RequestID || aws.ToString(attrs["traceparent"].StringValue) != m.TraceParent {
			t.Errorf("message attributes %+v, want request_id and traceparent", attrs)
		}
	})
}

// TestTraceParentAttributeIsRead: a message whose producer set the trace
// context only as the traceparent attribute is delivered with it.
func TestTraceParentAttributeIsRead(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	q := newQueue(t, client, storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 5})
	ctx := testCtx(t)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	body := orderflow.EncodeMessage(orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())})
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(q.URL()), MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{"traceparent": {DataType: aws.String("String"), StringValue: aws.String(tp)}},
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := q.Receive(ctx, 1, 2*time.Second)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive: %v, %d messages", err, len(ds))
	}
	if ds[0].TraceParent != tp {
		t.Errorf("delivered traceparent %q, want the attribute's %q", ds[0].TraceParent, tp)
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	q := newQueue(t, newClient(t), storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 5})
	ctx := testCtx(t)
	if err := q.SendRaw(ctx, make([]byte, 300<<10)); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("SendRaw of 300 KiB: got %v, want EInvalid", err)
	}
	if err := q.ChangeVisibility(ctx, "r", 13*time.Hour); orderflow.ErrorCode(err) != orderflow.EInvalid {
		t.Errorf("ChangeVisibility of 13h: got %v, want EInvalid", err)
	}
	if err := q.Send(ctx); err != nil {
		t.Errorf("Send of nothing: %v", err)
	}
	if err := q.Delete(ctx); err != nil {
		t.Errorf("Delete of nothing: %v", err)
	}
}

// TestWatchDead: the watch hands each dead message to handle once (until
// handle succeeds) and leaves them all in the dead-letter queue.
func TestWatchDead(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		q := newQueue(t, client, storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 1})
		ctx := testCtx(t)
		a, b := orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}, orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}
		for _, m := range []orderflow.Message{a, b} { // straight into the dead-letter queue
			body := string(orderflow.EncodeMessage(m))
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.DLQURL()), MessageBody: &body}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		calls := map[orderflow.OrderID]int{}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- q.WatchDead(wctx, 50*time.Millisecond, func(_ context.Context, d orderflow.Delivery) error {
				mu.Lock()
				defer mu.Unlock()
				calls[d.OrderID]++
				if d.OrderID == b.OrderID && calls[d.OrderID] == 1 {
					return errors.New("first try fails")
				}
				return nil
			})
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			ok := calls[a.OrderID] >= 1 && calls[b.OrderID] >= 2
			mu.Unlock()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("handle calls %v within 20s, want a once and b twice", calls)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Another round, one that sees a and b again: it handles a message
		// sent after them, and must not hand a or b out again.
		c := orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}
		body := string(orderflow.EncodeMessage(c))
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.DLQURL()), MessageBody: &body}); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			mu.Lock()
			handled := calls[c.OrderID] >= 1
			mu.Unlock()
			if handled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a message sent after the first ones was not handled within 20s (calls %v)", calls)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchDead: %v", err)
		}
		mu.Lock()
		if calls[a.OrderID] != 1 || calls[b.OrderID] != 2 {
			t.Errorf("handle calls %v, want a once and b twice (again only after a failure)", calls)
		}
		mu.Unlock()
		ds, err := q.ListDead(ctx, 10)
		if err != nil || len(ds) != 3 {
			t.Errorf("ListDead after the watch: %d, %v; want all three left", len(ds), err)
		}
	})
}

// TestUnreachable: with nothing listening, calls fail fast with
// EUnavailable (a 503 at the api), Delete as a BatchError too.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	cfg := awstest.Config(url)
	cfg.RetryMaxAttempts = 1
	client := sqs.NewFromConfig(cfg)
	ctx := context.Background()
	if _, err := sqsqueue.Open(ctx, client, sqsqueue.Options{QueueURL: url + "/1/q"}); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("Open: got %v, want EUnavailable", err)
	}
	q, err := sqsqueue.Open(ctx, client, sqsqueue.Options{QueueURL: url + "/1/q", DLQURL: url + "/1/d", CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Send":     q.Send(ctx, orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}),
		"Receive":  func() error { _, err := q.Receive(ctx, 10, time.Second); return err }(),
		"Ping":     q.Ping(ctx),
		"Depth":    func() error { _, err := q.Depth(ctx); return err }(),
		"ListDead": func() error { _, err := q.ListDead(ctx, 10); return err }(),
		"Redrive":  func() error { _, err := q.Redrive(ctx, 10); return err }(),
		"Purge":    func() error { _, err := q.Purge(ctx); return err }(),
		"Change":   q.ChangeVisibility(ctx, "r", time.Second),
		"Policy":   func() error { _, err := q.Policy(ctx); return err }(),
	} {
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			t.Errorf("%s: got %v, want EUnavailable", name, err)
		}
	}
	err = q.Delete(ctx, "r1", "r2")
	var be *orderflow.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 || orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Errorf("Delete: got %v, want a BatchError of both receipts that is EUnavailable", err)
	}
	if !strings.Contains(err.Error(), "batch") {
		t.Errorf("Delete error %q does not say it is a batch failure", err)
	}
}

// TestListingTheDeadKeepsTheirReceiveCount: SQS cannot peek, and every
// receive from the dead-letter queue (the operator's list, the processor's
// watch) raises a message's ApproximateReceiveCount. A dead message's
// receive count is how often the order queue delivered it, and stays so
// however often it is listed or watched.
func TestListingTheDeadKeepsTheirReceiveCount(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		q := newQueue(t, client, storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 2})
		ctx := testCtx(t)
		m := orderflow.Message{OrderID: orderflow.NewOrderID(time.Now()), RequestID: "req-dead", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
		if err := q.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2; i++ {
			ds, err := q.Receive(ctx, 1, 5*time.Second)
			if err != nil || len(ds) != 1 || ds[0].ReceiveCount != i {
				t.Fatalf("receive %d: %+v, %v", i, ds, err)
			}
			if err := q.ChangeVisibility(ctx, ds[0].Receipt, 0); err != nil {
				t.Fatal(err)
			}
		}
		if ds, err := q.Receive(ctx, 1, time.Second); err != nil || len(ds) != 0 {
			t.Fatalf("third receive: %d messages, %v; want none (moved to the DLQ)", len(ds), err)
		}

		list := func(what string) orderflow.Delivery {
			t.Helper()
			ds, err := q.ListDead(ctx, 10)
			if err != nil || len(ds) != 1 {
				t.Fatalf("ListDead (%s): %d messages, %v; want 1", what, len(ds), err)
			}
			d := ds[0]
			if d.Message != m || d.ReceiveCount != 2 {
				t.Errorf("ListDead (%s): %+v with receive count %d, want %+v received 2 times", what, d.Message, d.ReceiveCount, m)
			}
			return d
		}
		for i := range 4 {
			list(fmt.Sprintf("listing %d", i+1))
		}

		// The processor's watch receives it too.
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		var mu sync.Mutex
		rounds := 0
		go func() {
			done <- q.WatchDead(wctx, 50*time.Millisecond, func(context.Context, orderflow.Delivery) error {
				mu.Lock()
				defer mu.Unlock()
				rounds++
				return errors.New("fails, so that every round handles it again")
			})
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := rounds
			mu.Unlock()
			if n >= 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the watch handled the message %d times in 20s, want 3", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		list("after the watch")
	})
}
