package sqsqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqsqueue"
	"github.com/orderflow/orderflow/storetest"
)

// newClient returns an SQS client on the test endpoint (moto).
func newClient(t *testing.T) *sqs.Client {
	t.Helper()
	return sqs.NewFromConfig(awstest.Config(awstest.Endpoint(t)))
}

// forEachSQSClient runs test in parallel subtests, one per SQS backend
// (moto and ElasticMQ), with a client on it.
func forEachSQSClient(t *testing.T, test func(t *testing.T, client *sqs.Client)) {
	awstest.ForEachSQS(t, func(t *testing.T, b awstest.Backend) {
		t.Parallel()
		test(t, sqs.NewFromConfig(awstest.Config(b.SQS)))
	})
}

// newQueue creates a fresh queue pair on client's endpoint and opens a Queue on it,
// finding the dead-letter queue through the RedrivePolicy.
func newQueue(t *testing.T, client *sqs.Client, opts storetest.QueueOptions) *sqsqueue.Queue {
	t.Helper()
	return newQueueTB(t, client, opts)
}

func newQueueTB(t testing.TB, client *sqs.Client, opts storetest.QueueOptions) *sqsqueue.Queue {
	t.Helper()
	ctx := context.Background()
	name := awstest.Name("q")
	qurl, dlq, err := sqsqueue.CreateQueues(ctx, client, sqsqueue.QueueSpec{
		Name: name, DLQName: name + "-dlq", VisibilityTimeout: opts.VisibilityTimeout, MaxReceives: opts.MaxReceives,
	})
	if err != nil {
		t.Fatalf("CreateQueues: %v", err)
	}
	t.Cleanup(func() {
		if err := sqsqueue.DeleteQueues(context.Background(), client, qurl, dlq); err != nil {
			t.Errorf("DeleteQueues: %v", err)
		}
	})
	q, err := sqsqueue.Open(ctx, client, sqsqueue.Options{QueueURL: qurl})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if q.DLQURL() != dlq {
		t.Fatalf("Open found dead-letter queue %q, want %q", q.DLQURL(), dlq)
	}
	return q
}

// TestQueueContract runs the queue contract on each SQS implementation:
// moto and ElasticMQ.
func TestQueueContract(t *testing.T) {
	t.Parallel()
	forEachSQSClient(t, func(t *testing.T, client *sqs.Client) {
		storetest.TestQueue(t, func(t *testing.T, o storetest.QueueOptions) (orderflow.Queue, orderflow.DeadLetters) {
			q := newQueue(t, client, o)
			return q, q
		})
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
