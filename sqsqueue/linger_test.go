package sqsqueue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqsqueue"
)

// countingClient returns an SQS client on endpoint and the count of its
// requests.
func countingClient(endpoint string) (*sqs.Client, *awstest.Requests) {
	cfg, reqs := awstest.CountRequests(awstest.Config(endpoint))
	return sqs.NewFromConfig(cfg), reqs
}

// openQueue creates a fresh queue pair and opens a Queue on it with opts.
func openQueue(t *testing.T, client *sqs.Client, opts sqsqueue.Options) *sqsqueue.Queue {
	t.Helper()
	ctx := context.Background()
	name := awstest.Name("q")
	qurl, dlq, err := sqsqueue.CreateQueues(ctx, client, sqsqueue.QueueSpec{Name: name, DLQName: name + "-dlq", VisibilityTimeout: 30 * time.Second, MaxReceives: 5})
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	t.Cleanup(func() { sqsqueue.DeleteQueues(context.Background(), client, qurl, dlq) })
	opts.QueueURL, opts.DLQURL = qurl, dlq
	q, err := sqsqueue.Open(ctx, client, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return q
}

// TestReceiveLingerGathersAnArrivingBurst: messages that arrive one at a
// time while four receive loops wait (as the processor's do) come back in
// full receives once a receive came back short, instead of one receive
// each. The pause is ended by the test once every message is sent, so
// that the count does not depend on timing; without the linger the loops
// long-poll side by side and mostly take a message each.
func TestReceiveLingerGathersAnArrivingBurst(t *testing.T) {
	awstest.ForEachSQS(t, func(t *testing.T, b awstest.Backend) {
		t.Parallel()
		client, c := countingClient(b.SQS)
		q := openQueue(t, client, sqsqueue.Options{ReceiveLinger: time.Hour})
		release := make(chan time.Time)
		sqsqueue.SetPauseClock(q, func(time.Duration) <-chan time.Time { return release })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		// An empty queue: a short receive, which starts the pause.
		if ds, err := q.Receive(ctx, 10, 0); err != nil || len(ds) != 0 {
			t.Fatalf("Receive on an empty queue = %d messages, %v; want none", len(ds), err)
		}
		before := c.Count("ReceiveMessage")

		const n, receivers = 30, 4
		var loops sync.WaitGroup
		lctx, stop := context.WithCancel(ctx)
		var got atomic.Int64
		for range receivers {
			loops.Go(func() {
				for lctx.Err() == nil {
					ds, err := q.Receive(lctx, 10, time.Second)
					if err != nil && lctx.Err() == nil {
						t.Errorf("Receive: %v", err)
						return
					}
					if got.Add(int64(len(ds))) >= n {
						stop()
					}
				}
			})
		}
		for i := range n {
			if err := q.SendRaw(ctx, orderflow.EncodeMessage(orderflow.Message{OrderID: orderflow.OrderID(fmt.Sprintf("o%02d", i))})); err != nil {
				t.Fatal(err)
			}
		}
		close(release)
		loops.Wait()
		stop()
		if got.Load() != n {
			t.Fatalf("received %d messages, want %d", got.Load(), n)
		}
		// Full receives, and at most one more for each loop, which may
		// have begun as the others stopped.
		if r, most := c.Count("ReceiveMessage")-before, n/10+receivers; r > most {
			t.Errorf("%d ReceiveMessage requests for %d messages, want at most %d", r, n, most)
		} else {
			t.Logf("%d ReceiveMessage requests for %d messages", r, n)
		}
	})
}

// TestReceiveLingerEndsWithTheContext: a Receive waiting out the linger
// returns, with EUnavailable and no message, once its context ends.
func TestReceiveLingerEndsWithTheContext(t *testing.T) {
	awstest.ForEachSQS(t, func(t *testing.T, b awstest.Backend) {
		t.Parallel()
		q := openQueue(t, sqs.NewFromConfig(awstest.Config(b.SQS)), sqsqueue.Options{ReceiveLinger: time.Hour})
		if ds, err := q.Receive(testCtx(t), 10, 0); err != nil || len(ds) != 0 {
			t.Fatalf("Receive on an empty queue = %d messages, %v; want none", len(ds), err)
		}
		paused := make(chan struct{})
		sqsqueue.SetPauseClock(q, func(time.Duration) <-chan time.Time { close(paused); return nil })
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			ds, err := q.Receive(ctx, 10, time.Second)
			done <- result{len(ds), err}
		}()
		select {
		case <-paused: // in the pause, which would never end by itself
		case <-time.After(30 * time.Second):
			t.Fatal("Receive after a short one did not pause")
		}
		cancel()
		select {
		case r := <-done:
			if r.n != 0 || orderflow.ErrorCode(r.err) != orderflow.EUnavailable {
				t.Errorf("Receive = %d messages, %v; want none and EUnavailable", r.n, r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Receive did not return after its context ended")
		}
	})
}

// TestSendWithoutAWindowStillBatchesOneSend: a Queue with no send window (negative
// FlushDelay) still sends, one batch per Send.
func TestSendWithoutAWindowStillBatchesOneSend(t *testing.T) {
	awstest.ForEachSQS(t, func(t *testing.T, b awstest.Backend) {
		t.Parallel()
		client, c := countingClient(b.SQS)
		q := openQueue(t, client, sqsqueue.Options{FlushDelay: -1, ReceiveLinger: -1})
		msgs := make([]orderflow.Message, 10)
		for i := range msgs {
			msgs[i] = orderflow.Message{OrderID: orderflow.OrderID(fmt.Sprintf("o%02d", i))}
		}
		if err := q.Send(testCtx(t), msgs...); err != nil {
			t.Fatal(err)
		}
		if n := c.Count("SendMessageBatch"); n != 1 {
			t.Errorf("%d SendMessageBatch requests for one Send of 10, want 1", n)
		}
	})
}
