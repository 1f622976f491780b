package dynamostore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// defaultWriteFailureWindow is how long a failed write keeps Ping failing
// unless a later write succeeds (Options.WriteFailureWindow).
const defaultWriteFailureWindow = 5 * time.Second

// writeOutcomes remembers how the store's last write went, so that Ping
// (readiness) can tell that the table takes no writes while it can still
// be read (write throttling, a policy that denies writes, a table being
// restored) without a write of its own on every probe. Safe for
// concurrent use.
type writeOutcomes struct {
	mu  sync.Mutex
	at  time.Time
	err error // nil: the last write was taken
}

// add installs, on a client's middleware stack, the step that records the
// outcome of each write call, after the SDK's retries.
func (w *writeOutcomes) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("OrderflowWriteOutcome",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if isWrite(in.Parameters) {
				w.record(ctx, err)
			}
			return out, md, err
		}), middleware.After)
}

func isWrite(params any) bool {
	switch params.(type) {
	case *dynamodb.PutItemInput, *dynamodb.UpdateItemInput, *dynamodb.DeleteItemInput,
		*dynamodb.TransactWriteItemsInput, *dynamodb.BatchWriteItemInput:
		return true
	}
	return false
}

// record notes the outcome of one write call. A failed condition is a
// write the table took and decided; a request DynamoDB refuses as
// malformed is a bug in that request, and a caller that gave up says
// nothing about the table: neither is recorded.
func (w *writeOutcomes) record(ctx context.Context, err error) {
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	var ae smithy.APIError
	switch {
	case err == nil, errors.As(err, &ccf), errors.As(err, &tce):
		err = nil
	case ctx.Err() != nil:
		return
	case errors.As(err, &ae) && (ae.ErrorCode() == "ValidationException" || ae.ErrorCode() == "SerializationException"):
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at, w.err = time.Now(), err
}

// failed returns the last write's error, and how long ago it was, if it
// failed less than window ago.
func (w *writeOutcomes) failed(window time.Duration) (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		return 0, nil
	}
	if ago := time.Since(w.at); ago < window {
		return ago, w.err
	}
	return 0, nil
}
