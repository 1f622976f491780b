package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	//lint:ignore SA1019 otelaws is marked unsupported in favour of the SDK's own tracing through smithy-go's smithyoteltracing adapter, a module the Go proxy here does not serve; otelaws v0.72.0 works with this SDK and its spans are the same calls
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/awsintake"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/sqsqueue"
)

// awsAPI holds the AWS clients of one process.
type awsAPI struct {
	sqs *sqs.Client
	ddb *dynamodb.Client
	// gatewayDDB is the DynamoDB client of the simulated payment gateway's
	// ledger. It is the same table, but its calls are counted with
	// caller="simulated_gateway": a real gateway keeps its ledger on its
	// own side, so these calls are not orderflow's cost per order.
	gatewayDDB *dynamodb.Client
	// limiterDDB is the DynamoDB client of the rate limiter shared by the
	// api processes (caller="rate_limiter"), so that its cost per order
	// shows on its own.
	limiterDDB *dynamodb.Client
}

// Values of the caller label of aws_requests_total.
const (
	callerOrderflow = "orderflow"
	callerGateway   = "simulated_gateway"
	callerLimiter   = "rate_limiter"
)

// awsClients builds the AWS clients of cfg: the standard credential chain,
// cfg's region and endpoints (AWS_ENDPOINT_URL, or per service
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB), at most 3 attempts
// per call with backoff capped at 1s, every attempt counted in
// aws_requests_total on reg (if not nil), and every call a client span of
// tp (if not nil; otelaws).
func awsClients(ctx context.Context, cfg config, reg prometheus.Registerer, tp trace.TracerProvider) (awsAPI, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.AWSRegion),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = time.Second
				// No client-side retry quota: in an outage every call fails
				// fast anyway, and the quota would outlast the outage.
				o.RateLimiter = ratelimit.None
			})
		}),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 2 * time.Second }).
			WithTransportOptions(func(t *http.Transport) {
				// The processor and a busy api keep many calls in flight.
				t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
			})),
	}
	var counter *prometheus.CounterVec
	if reg != nil {
		var err error
		if counter, err = awsRequestCounter(reg); err != nil {
			return awsAPI{}, err
		}
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return awsAPI{}, fmt.Errorf("AWS configuration: %w", err)
	}
	// The endpoints are set on each client from cfg, after the SDK's own
	// resolution (which reads AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
	// from the process environment itself), so that the settings come from
	// one place, config.go, and a service's own endpoint wins.
	sqsEndpoint := endpointOf(cfg.SQSEndpoint, cfg.AWSEndpoint)
	ddbEndpoint := endpointOf(cfg.DynamoDBEndpoint, cfg.AWSEndpoint)
	// counted is the request counter, labelled with caller, for one client.
	counted := func(caller string) []func(*middleware.Stack) error {
		if counter == nil {
			return nil
		}
		return []func(*middleware.Stack) error{countRequests(counter, caller)}
	}
	ours, gateway, limiter := counted(callerOrderflow), counted(callerGateway), counted(callerLimiter)
	if tp != nil {
		for _, mw := range []*[]func(*middleware.Stack) error{&ours, &gateway, &limiter} {
			otelaws.AppendMiddlewares(mw, otelaws.WithTracerProvider(tp), otelaws.WithTextMapPropagator(propagation.TraceContext{}))
		}
	}
	ddbOptions := func(mw []func(*middleware.Stack) error) func(*dynamodb.Options) {
		return func(o *dynamodb.Options) {
			o.APIOptions = append(o.APIOptions, mw...)
			if ddbEndpoint != nil {
				o.BaseEndpoint = ddbEndpoint
			}
		}
	}
	return awsAPI{
		sqs: sqs.NewFromConfig(ac, func(o *sqs.Options) {
			o.APIOptions = append(o.APIOptions, ours...)
			if sqsEndpoint != nil {
				o.BaseEndpoint = sqsEndpoint
			}
		}),
		ddb:        dynamodb.NewFromConfig(ac, ddbOptions(ours)),
		gatewayDDB: dynamodb.NewFromConfig(ac, ddbOptions(gateway)),
		limiterDDB: dynamodb.NewFromConfig(ac, ddbOptions(limiter)),
	}, nil
}

// endpointOf returns the first endpoint set of service and global (the
// service's own setting wins), or nil to leave the SDK's default.
func endpointOf(service, global string) *string {
	for _, e := range []string{service, global} {
		if e != "" {
			return aws.String(e)
		}
	}
	return nil
}

// awsRequestCounter registers aws_requests_total on reg (or finds it
// registered already).
func awsRequestCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aws_requests_total",
		Help: "Requests sent to AWS (each attempt of a call counts), by service (sqs, dynamodb), operation, outcome and caller (orderflow; rate_limiter for the rate limits shared by the api processes; simulated_gateway for the simulated payment gateway's ledger).",
	}, []string{"service", "operation", "outcome", "caller"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("register aws_requests_total: %w", err)
	}
	return c, nil
}

// countRequests is an aws-sdk-go-v2 middleware at the end of the Finalize
// step, after the retry middleware, so that it runs once per attempt: the
// requests AWS bills.
func countRequests(c *prometheus.CounterVec, caller string) func(*middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("OrderflowCountRequests",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			c.WithLabelValues(strings.ToLower(awsmiddleware.GetServiceID(ctx)), awsmiddleware.GetOperationName(ctx), outcome(err), caller).Inc()
			return out, md, err
		})
	return func(s *middleware.Stack) error { return s.Finalize.Add(mw, middleware.After) }
}

// outcome labels the result of one AWS request.
func outcome(err error) string {
	if err == nil {
		return "success"
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return "network_error"
	}
	code := ae.ErrorCode()
	switch {
	case code == "ConditionalCheckFailedException" || code == "TransactionCanceledException":
		return "condition_failed"
	case strings.Contains(code, "Throttl") || strings.Contains(code, "ProvisionedThroughputExceeded") || code == "RequestLimitExceeded":
		return "throttled"
	case ae.ErrorFault() == smithy.FaultServer:
		return "server_error"
	}
	return "client_error"
}

// window is a batching window setting as the adapters' options take it,
// where zero is their default: a setting of 0 (no wait) is negative.
func window(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// openAWS opens the AWS mode's backend: the queue on SQS, the store (and
// the simulated gateway's ledger) on DynamoDB, the intake across both. The
// pending sweep, a processor-side loop of this mode only, is in the
// backend's loops, which serve runs where the processor runs, not in the
// api or in orderflow dlq.
func openAWS(ctx context.Context, cfg config, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*backend, error) {
	clients, err := awsClients(ctx, cfg, reg, tp)
	if err != nil {
		return nil, err
	}
	q, err := sqsqueue.Open(ctx, clients.sqs, sqsqueue.Options{
		QueueURL: cfg.SQSQueueURL, DLQURL: cfg.SQSDLQURL, CallTimeout: cfg.AWSCallTimeout, Logger: log,
		TracerProvider: tp,
		FlushDelay:     window(cfg.SQSSendWindow), ReceiveLinger: window(cfg.SQSReceiveLinger),
	})
	if err != nil {
		return nil, fmt.Errorf("SQS_QUEUE_URL %s: %w", cfg.SQSQueueURL, err)
	}
	storeOpts := dynamostore.Options{
		CallTimeout:    cfg.AWSCallTimeout,
		IdempotencyTTL: cfg.IdempotencyTTL,
		StaleIntent:    cfg.TakeoverAfter,
		// Orders are this region's; with a global table, those of the
		// regions declared down are taken over (docs/multi-region.md).
		Region:   cfg.AWSRegion,
		TakeOver: cfg.TakeoverRegions,
		// Any process may write an order: watch by reading.
		WatchInterval:    cfg.WatchInterval,
		WatchMaxInterval: cfg.WatchMaxInterval,
	}
	st := dynamostore.New(clients.ddb, cfg.DDBTable, storeOpts)
	// The simulated gateway's ledger: the same table through the client
	// counted as the gateway's (see awsAPI).
	ledger := dynamostore.New(clients.gatewayDDB, cfg.DDBTable, storeOpts)
	sw := processor.NewSweeper(processor.SweeperConfig{After: cfg.SweepAfter}, st, q, log.With("component", "sweeper"), time.Now)
	b := &backend{
		intake:  awsintake.New(st, q, awsintake.Options{Logger: log.With("component", "intake")}),
		store:   st,
		stock:   st,
		queue:   q,
		dead:    q,
		watch:   q,
		ledger:  ledger,
		limiter: dynamostore.NewRateLimiter(clients.limiterDDB, cfg.DDBTable, dynamostore.Options{CallTimeout: cfg.AWSCallTimeout}),
		watcher: st,
		loops:   []loop{{"pending sweep", sw.Run}},
		close:   func() error { return nil },
		// SQS's ApproximateNumberOfMessages* are eventually consistent
		// (they may lag the queue by up to a minute on AWS): counting
		// more often than every second would buy nothing but
		// GetQueueAttributes calls (two per count, the DLQ's included).
		backlogInterval: time.Second,
	}
	b.work.queue, b.work.store = q, st
	return b, nil
}
