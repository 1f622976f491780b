package sqsqueue_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/storetest"
)

// BenchmarkRequestsPerMessage sends b.N messages from 64 concurrent
// callers (as a busy api does), then receives and deletes them 10 at a time
// (as the processor does), and reports SQS requests per message: the
// floor is 0.3 (a tenth each of send, receive and delete). moto's speed
// bounds ns/op; the request count is what AWS bills. It runs on moto and
// on ElasticMQ.
//
//	go test -run - -bench RequestsPerMessage -benchtime 300x ./sqsqueue
//
// (moto receives in time proportional to the queue length, so keep N small.)
func BenchmarkRequestsPerMessage(b *testing.B) {
	b.Run("moto", func(b *testing.B) { benchmarkRequestsPerMessage(b, awstest.Endpoint(b)) })
	b.Run("elasticmq", func(b *testing.B) { benchmarkRequestsPerMessage(b, awstest.ElasticMQ(b)) })
}

func benchmarkRequestsPerMessage(b *testing.B, endpoint string) {
	var requests atomic.Int64
	count := middleware.FinalizeMiddlewareFunc("count", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		requests.Add(1)
		return next.HandleFinalize(ctx, in)
	})
	cfg := awstest.Config(endpoint)
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error { return s.Finalize.Add(count, middleware.After) })
	client := sqs.NewFromConfig(cfg)
	q := newQueueTB(b, client, storetest.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceives: 5})
	ctx := context.Background()
	requests.Store(0)
	b.ResetTimer()
	var wg sync.WaitGroup
	const senders = 64
	for s := range senders {
		wg.Go(func() {
			for i := s; i < b.N; i += senders {
				if err := q.Send(ctx, orderflow.Message{OrderID: orderflow.NewOrderID(time.Now())}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for got := 0; got < b.N; {
		ds, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			receipts[i] = d.Receipt
		}
		if len(ds) > 0 {
			if err := q.Delete(ctx, receipts...); err != nil {
				b.Fatal(err)
			}
		}
		got += len(ds)
	}
	b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/msg")
}
