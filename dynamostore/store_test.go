package dynamostore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/storetest"
)

// newTable creates a fresh table on moto and deletes it after the test.
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := dynamodb.NewFromConfig(awstest.Config(awstest.Endpoint(t)))
	name := awstest.Name("orders")
	if err := dynamostore.CreateTable(context.Background(), client, name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		if err := dynamostore.DeleteTable(context.Background(), client, name); err != nil {
			t.Errorf("DeleteTable: %v", err)
		}
	})
	return client, name
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	st := dynamostore.New(client, table, dynamostore.Options{})
	create := func(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
		b, err := st.BeginOrder(ctx, o, orderflow.IdempotencyKey{})
		return b.Order, err
	}
	storetest.TestStore(t, func(t *testing.T) storetest.Store {
		return storetest.Store{Store: st, Create: create, Stock: st}
	})
}

func TestLedgerContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	st := dynamostore.New(client, table, dynamostore.Options{})
	storetest.TestLedger(t, func(t *testing.T) storetest.Ledger { return st })
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// faultyWrites makes every write call of a client fail like DynamoDB's own
// faults while fail is set; reads still reach moto.
func faultyWrites(fail *atomic.Bool) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("TestFaultyWrites",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					switch awsmiddleware.GetOperationName(ctx) {
					case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
						if fail.Load() {
							return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected", Fault: smithy.FaultServer}
						}
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
}

// Ping (readiness) fails while writes fail although the table can be read,
// without writing anything itself; it succeeds again after a write went
// through, or by itself once the failure is older than the window.
func TestPingFailsWhileWritesFail(t *testing.T) {
	t.Parallel()
	_, table := newTable(t)
	var fail atomic.Bool
	client := dynamodb.NewFromConfig(awstest.Config(awstest.Endpoint(t)), faultyWrites(&fail))
	st := dynamostore.New(client, table, dynamostore.Options{WriteFailureWindow: 300 * time.Millisecond})
	if err := st.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	fail.Store(true)
	if err := st.SetStock(testCtx(t), "widget", 1); err == nil {
		t.Fatal("SetStock succeeded while writes fail")
	}
	if err := st.Ping(testCtx(t)); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Ping after a failed write: got %v, want %s", err, orderflow.EUnavailable)
	}
	fail.Store(false)
	if err := st.SetStock(testCtx(t), "widget", 1); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after a write went through: %v", err)
	}

	fail.Store(true)
	_ = st.SetStock(testCtx(t), "widget", 2)
	if err := st.Ping(testCtx(t)); err == nil {
		t.Fatal("Ping succeeded after a failed write")
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.Ping(testCtx(t)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Ping still fails long after the window")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A failed condition is a write the table took.
	_ = st.SetStock(testCtx(t), "widget", 3)
	fail.Store(false)
	if _, err := st.Transition(testCtx(t), orderflow.Transition{ID: orderflow.NewOrderID(time.Now()), From: orderflow.StatusPending, To: orderflow.StatusProcessing}); orderflow.ErrorCode(err) != orderflow.ENotFound && orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Fatalf("Transition of an unknown order: %v", err)
	}
	if err := st.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after a conditional write that failed its condition: %v", err)
	}
}

// Ping judges the failure window when it is asked: a read slower than the
// window (a loaded table) does not let the failure expire meanwhile and
// report the table ready. (A loaded CI run's moto once answered Ping's
// read after more than the 300 ms window of the test above.)
func TestPingJudgesTheWindowWhenAsked(t *testing.T) {
	t.Parallel()
	_, table := newTable(t)
	var fail atomic.Bool
	const window = 200 * time.Millisecond
	slowReads := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("TestSlowReads",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) == "GetItem" {
						select {
						case <-time.After(2 * window):
						case <-ctx.Done():
						}
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
	client := dynamodb.NewFromConfig(awstest.Config(awstest.Endpoint(t)), faultyWrites(&fail), slowReads)
	st := dynamostore.New(client, table, dynamostore.Options{WriteFailureWindow: window})
	fail.Store(true)
	if err := st.SetStock(testCtx(t), "widget", 1); err == nil {
		t.Fatal("SetStock succeeded while writes fail")
	}
	if err := st.Ping(testCtx(t)); orderflow.ErrorCode(err) != orderflow.EUnavailable {
		t.Fatalf("Ping asked within the window, answered after it: got %v, want %s", err, orderflow.EUnavailable)
	}
	if err := st.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping asked after the window: %v", err)
	}
}

func TestRateLimiterContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	storetest.TestRateLimiter(t, func(t *testing.T) (orderflow.RateLimiter, orderflow.RateLimiter) {
		// Two limiters, each with its own hints: two api processes.
		return dynamostore.NewRateLimiter(client, table, dynamostore.Options{}),
			dynamostore.NewRateLimiter(client, table, dynamostore.Options{})
	})
}

func TestWatcherContract(t *testing.T) {
	t.Parallel()
	client, table := newTable(t)
	writer := dynamostore.New(client, table, dynamostore.Options{})
	create := func(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
		b, err := writer.BeginOrder(ctx, o, orderflow.IdempotencyKey{})
		return b.Order, err
	}
	t.Run("this process's writes", func(t *testing.T) {
		storetest.TestWatcher(t, func(t *testing.T) storetest.Watching {
			// An interval far beyond the suite's wait: only Notify can pass.
			st := dynamostore.New(client, table, dynamostore.Options{WatchInterval: time.Hour})
			c := func(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
				b, err := st.BeginOrder(ctx, o, orderflow.IdempotencyKey{})
				return b.Order, err
			}
			return storetest.Watching{Store: storetest.Store{Store: st, Create: c, Stock: st}, Watcher: st}
		})
	})
	t.Run("another process's writes", func(t *testing.T) {
		storetest.TestWatcher(t, func(t *testing.T) storetest.Watching {
			api := dynamostore.New(client, table, dynamostore.Options{WatchInterval: 20 * time.Millisecond})
			return storetest.Watching{Store: storetest.Store{Store: writer, Create: create, Stock: writer}, Watcher: api}
		})
	})
}
