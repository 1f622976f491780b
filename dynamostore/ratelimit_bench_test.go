package dynamostore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
)

// BenchmarkRateLimiterWrites reports the DynamoDB write requests of one
// take (writes/take) in the traffic shapes that decide it: one api
// process or two taking turns on one user's bucket, with the user's
// orders further apart than the refill interval (the bucket idle at each
// order) or in a burst (the bucket filling up).
//
//	go test -run - -bench RateLimiterWrites -benchtime 200x ./dynamostore
func BenchmarkRateLimiterWrites(b *testing.B) {
	endpoint := awstest.Endpoint(b)
	var writes atomic.Int64
	client := dynamodb.NewFromConfig(awstest.Config(endpoint), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("CountWrites",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) == "UpdateItem" {
						writes.Add(1)
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	})
	table := awstest.Name("ratebench")
	if err := dynamostore.CreateTable(context.Background(), client, table); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dynamostore.DeleteTable(context.Background(), client, table) })

	rate := orderflow.Rate{Limit: 100, Window: time.Minute} // 600 ms per unit
	for _, bc := range []struct {
		name      string
		processes int
		gap       time.Duration // between one take and the next
	}{
		{"one process, orders slower than the refill", 1, 2 * time.Second},
		{"one process, a burst", 1, 100 * time.Millisecond},
		{"two processes in turn, orders slower than the refill", 2, 2 * time.Second},
		{"two processes in turn, orders 1.5 refills apart", 2, 900 * time.Millisecond},
		{"two processes in turn, orders 0.83 refills apart", 2, 500 * time.Millisecond},
		{"two processes in turn, orders 0.67 refills apart", 2, 400 * time.Millisecond},
		{"two processes in turn, a burst", 2, 100 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var limiters []*dynamostore.RateLimiter
			for range bc.processes {
				limiters = append(limiters, dynamostore.NewRateLimiter(client, table, dynamostore.Options{}))
			}
			key := awstest.Name("user")
			now := time.Now()
			writes.Store(0)
			denied := 0
			for i := range b.N {
				d, err := limiters[i%len(limiters)].Take(context.Background(), key, rate, now)
				if err != nil {
					b.Fatal(err)
				}
				if !d.Allowed {
					denied++
					now = now.Add(d.RetryAfter) // a client that waits as told
				}
				now = now.Add(bc.gap)
			}
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/take")
			b.ReportMetric(float64(denied)/float64(b.N), "denied/take")
		})
	}
}
