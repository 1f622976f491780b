package awstest

import (
	"context"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Requests counts the requests the clients of a configuration send, by
// operation (ReceiveMessage, DeleteMessageBatch, ...), each attempt once:
// what AWS bills. Safe for concurrent use.
type Requests struct {
	mu sync.Mutex
	n  map[string]int
}

// CountRequests returns cfg with a middleware that counts every request
// of the clients made from it, and the count.
func CountRequests(cfg aws.Config) (aws.Config, *Requests) {
	r := &Requests{n: map[string]int{}}
	mw := middleware.FinalizeMiddlewareFunc("awstest.CountRequests", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		r.mu.Lock()
		r.n[awsmiddleware.GetOperationName(ctx)]++
		r.mu.Unlock()
		return next.HandleFinalize(ctx, in)
	})
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...),
		func(s *middleware.Stack) error { return s.Finalize.Add(mw, middleware.After) })
	return cfg, r
}

// Count returns the requests of operation op so far.
func (r *Requests) Count(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[op]
}

// Snapshot returns the counts so far, by operation.
func (r *Requests) Snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.n)
}

// Reset forgets the counts so far (a test's set-up requests, say).
func (r *Requests) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.n)
}
