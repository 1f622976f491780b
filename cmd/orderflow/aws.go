package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
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

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/dynamostore"
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
}

// Values of the caller label of aws_requests_total.
const (
	callerOrderflow = "orderflow"
	callerGateway   = "simulated_gateway"
)

// awsClients builds the AWS clients of cfg: the standard credential chain,
// cfg's region and endpoint, at most 3 attempts per call with backoff
// capped at 1s, and every attempt counted in aws_requests_total on reg (if
// not nil).
func awsClients(ctx context.Context, cfg config, reg prometheus.Registerer) (awsAPI, error) {
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
	if cfg.AWSEndpoint != "" {
		ac.BaseEndpoint = aws.String(cfg.AWSEndpoint)
	}
	// counted is the request counter, labelled with caller, for one client.
	counted := func(caller string) []func(*middleware.Stack) error {
		if counter == nil {
			return nil
		}
		return []func(*middleware.Stack) error{countRequests(counter, caller)}
	}
	ours, gateway := counted(callerOrderflow), counted(callerGateway)
	return awsAPI{
		sqs:        sqs.NewFromConfig(ac, func(o *sqs.Options) { o.APIOptions = append(o.APIOptions, ours...) }),
		ddb:        dynamodb.NewFromConfig(ac, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, ours...) }),
		gatewayDDB: dynamodb.NewFromConfig(ac, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, gateway...) }),
	}, nil
}

// awsRequestCounter registers aws_requests_total on reg (or finds it
// registered already).
func awsRequestCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aws_requests_total",
		Help: "Requests sent to AWS (each attempt of a call counts), by service (sqs, dynamodb), operation, outcome and caller (orderflow, or simulated_gateway for the simulated payment gateway's ledger).",
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

// openAWS opens the AWS mode's backend: the queue on SQS, the store (and
// the simulated gateway's ledger) on DynamoDB. The processor's background
// duties of this mode, the dead-letter watch and the pending sweep, start
// with the first Receive, so that they run where the processor runs and
// not in the api or in orderflow dlq.
func openAWS(ctx context.Context, cfg config, log *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	clients, err := awsClients(ctx, cfg, reg)
	if err != nil {
		return nil, err
	}
	q, err := sqsqueue.Open(ctx, clients.sqs, sqsqueue.Options{
		QueueURL: cfg.SQSQueueURL, DLQURL: cfg.SQSDLQURL, CallTimeout: cfg.AWSCallTimeout, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("SQS_QUEUE_URL %s: %w", cfg.SQSQueueURL, err)
	}
	storeOpts := dynamostore.Options{
		CallTimeout:    cfg.AWSCallTimeout,
		IdempotencyTTL: cfg.IdempotencyTTL,
		StaleIntent:    cfg.TakeoverAfter,
	}
	st := dynamostore.New(clients.ddb, cfg.DDBTable, storeOpts)
	// The simulated gateway's ledger: the same table through the client
	// counted as the gateway's (see awsAPI).
	ledger := dynamostore.New(clients.gatewayDDB, cfg.DDBTable, storeOpts)
	aq := &awsQueue{Queue: q}
	bg := &background{}
	aq.start = func() {
		bs := &backstop{store: st, ledger: ledger, maxReceives: q.Policy().MaxReceives, report: aq.reports.add}
		bg.run(func(ctx context.Context) error { return q.WatchDead(ctx, cfg.DLQWatchInterval, bs.handle) })
		sw := &sweeper{store: st, queue: q, after: cfg.SweepAfter, log: log.With("component", "sweeper"), now: time.Now}
		bg.run(sw.run)
	}
	return &backend{
		intake: &awsIntake{store: st, queue: q, log: log.With("component", "intake")},
		store:  st,
		stock:  st,
		queue:  aq,
		dead:   q,
		ledger: ledger,
		close:  func() error { bg.stop(); return nil },
	}, nil
}

// awsQueue is the SQS queue as the processor sees it: its first Receive
// starts the processor-side background work of the AWS mode, and each
// Receive also hands out the dead-letter watch's reports (see
// orderflow.Delivery's DeadLettered), so that the processor counts and
// logs the orders the watch ended.
type awsQueue struct {
	*sqsqueue.Queue
	once    sync.Once
	start   func()
	reports reports
}

// Receive starts the background work once, then receives, and adds the
// reports made meanwhile.
func (q *awsQueue) Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	q.once.Do(q.start)
	ds, err := q.Queue.Receive(ctx, max, wait)
	return append(ds, q.reports.take()...), err
}

// reports holds dead-letter reports until the processor's next Receive.
type reports struct {
	mu sync.Mutex
	ds []orderflow.Delivery
}

func (r *reports) add(d orderflow.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds = append(r.ds, d)
}

func (r *reports) take() []orderflow.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := r.ds
	r.ds = nil
	return ds
}

// background runs goroutines until stop.
type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup
}

func (b *background) run(f func(context.Context) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithCancel(context.Background())
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		_ = f(b.ctx) // both loops log their own errors and return nil
	}()
}

func (b *background) stop() {
	b.mu.Lock()
	if b.cancel != nil {
		b.cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// intakeStore is what awsIntake needs of the DynamoDB store.
type intakeStore interface {
	BeginOrder(ctx context.Context, o orderflow.Order, k orderflow.IdempotencyKey) (dynamostore.Begun, error)
	FinishOrder(ctx context.Context, k orderflow.IdempotencyKey, b dynamostore.Begun) error
	AbandonOrder(ctx context.Context, k orderflow.IdempotencyKey, b dynamostore.Begun) error
	Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error)
}

// awsIntake is the api's write path in the AWS mode, where the order and
// its message live in two services and cannot be written in one
// transaction (the embedded mode's Accept is one SQLite transaction). See
// Accept for the order of operations and why it is safe.
type awsIntake struct {
	store intakeStore
	queue interface {
		Send(ctx context.Context, msgs ...orderflow.Message) error
	}
	log *slog.Logger
}

// Accept stores o and sends its message, in this order:
//
//  1. BeginOrder: with an Idempotency-Key, one DynamoDB transaction puts
//     the key's record (state "pending", the request hash, o's id) and the
//     order (PENDING), each only if absent; without a key, a conditional
//     put of the order. A key seen before decides instead: another hash →
//     EMismatch (422); "done" → replay of the original order (no second
//     message); "pending" and younger than ORDERFLOW_TAKEOVER_AFTER →
//     EConflict (409, the first request is in flight); older → the first
//     request died, and this one takes the record over (conditionally, so
//     one retry wins) and carries on with the original order.
//  2. Send the message (SendMessageBatch, coalesced with other requests).
//  3. FinishOrder marks the key's record "done".
//
// Why nothing is lost or doubled: the order is durable before its message
// exists, so the processor never sees a message without an order (beyond
// the index lag it already retries). If the process dies between 1 and 2,
// the client (who got no 202) retries with its key, takes the stale record
// over and sends the message for the same order id: one order, one message.
// If it dies between 2 and 3, a retry after the takeover time sends a
// second message for the same order, which the processor recognises as a
// duplicate (the order is in work or final); no second order, no second
// charge. Without a key, or if the client never retries, the processor's
// sweeper re-sends the message of any order still PENDING after
// ORDERFLOW_SWEEP_AFTER, from the sparse by_pending index. If the send
// fails while the api is alive, the client gets 503: with a key, the
// record is made stale at once so that the retry takes it over without
// waiting; without a key the order is ended FAILED (a client without a key
// retries with a new order, and must not get two), and only if even that
// write fails can the sweeper later complete an order whose client was
// told 503, the ambiguity every timeout has; clients that care send keys.
func (a *awsIntake) Accept(ctx context.Context, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool, error) {
	b, err := a.store.BeginOrder(ctx, o, key)
	if err != nil {
		return orderflow.Order{}, false, err
	}
	if !b.NeedsMessage() {
		return b.Order, false, nil
	}
	msg := orderflow.Message{OrderID: b.Order.ID, RequestID: b.Order.RequestID}
	if err := a.queue.Send(ctx, msg); err != nil {
		a.notSent(ctx, key, b, err)
		return orderflow.Order{}, false, err
	}
	if err := a.store.FinishOrder(ctx, key, b); err != nil {
		// The order and its message are in: the 202 is true. A retry with
		// the key after the takeover time sends a duplicate message, which
		// the processor drops.
		a.log.WarnContext(ctx, "order accepted but its idempotency key not marked done", "err", err)
	}
	return b.Order, true, nil
}

// notSent cleans up after a failed send; see Accept.
func (a *awsIntake) notSent(ctx context.Context, key orderflow.IdempotencyKey, b dynamostore.Begun, sendErr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if key.Key != "" {
		if err := a.store.AbandonOrder(ctx, key, b); err != nil {
			a.log.WarnContext(ctx, "order message not sent; its idempotency key stays in flight until the takeover time",
				"err", sendErr, "abandon_err", err)
		}
		return
	}
	f := &orderflow.Failure{Code: orderflow.ReasonProcessingFailed, Detail: "the order could not be queued and was not accepted (the api answered 503); place it again"}
	_, err := a.store.Transition(ctx, orderflow.Transition{ID: b.Order.ID, From: orderflow.StatusPending, To: orderflow.StatusFailed, Failure: f, At: time.Now().UTC()})
	if err != nil {
		a.log.ErrorContext(ctx, "order message not sent and the order not ended; the sweeper will process it",
			"err", sendErr, "fail_err", err)
	}
}

// backstopStore is what the dead-letter backstop needs of the store.
type backstopStore interface {
	GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error)
	Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error)
	Release(ctx context.Context, id orderflow.OrderID) error
}

// backstop ends the order of a message SQS moved to the dead-letter queue,
// with the embedded queue's policy: the payment ledger decides. An order in
// PROCESSING whose charge is in the ledger passed every stage (payment is
// the last), so it is COMPLETED; any other order not yet final is FAILED
// (ReasonDeadLettered) and its stock given back, so that no customer is
// charged for a FAILED order. Each order it ends goes to report, as the
// embedded queue's dead-letter reports go to the processor, which counts
// and logs them; the conditional transition makes one watch, of all the
// processors', the one that ends and reports it.
type backstop struct {
	store  backstopStore
	ledger interface {
		Charges(ctx context.Context, id orderflow.OrderID) ([]orderflow.Charge, error)
	}
	maxReceives int
	report      func(orderflow.Delivery)
}

// handle is the WatchDead callback for one dead message.
func (b *backstop) handle(ctx context.Context, d orderflow.Delivery) error {
	if d.Err != nil {
		return nil // a poison message: the processor ended its order, if it named one
	}
	ctx = orderflow.WithOrderID(ctx, d.OrderID)
	o, err := b.store.GetOrder(ctx, d.OrderID)
	switch {
	case orderflow.ErrorCode(err) == orderflow.ENotFound:
		return nil
	case err != nil:
		return err
	case o.Status == orderflow.StatusFailed && o.Failure != nil && o.Failure.Code == orderflow.ReasonDeadLettered:
		// Failed by an earlier round that may have died before the release.
		return b.store.Release(ctx, o.ID)
	case o.Status.Terminal():
		return nil
	}
	t := orderflow.Transition{ID: o.ID, From: o.Status, To: orderflow.StatusFailed, At: time.Now().UTC()}
	if o.Status == orderflow.StatusProcessing {
		charges, err := b.ledger.Charges(ctx, o.ID)
		if err != nil {
			return err
		}
		if len(charges) > 0 {
			t.To = orderflow.StatusCompleted
		}
	}
	if t.To == orderflow.StatusFailed {
		t.Failure = &orderflow.Failure{
			Code:   orderflow.ReasonDeadLettered,
			Detail: fmt.Sprintf("the order's message was received %d times without the order being finished and was moved to the dead-letter queue", b.maxReceives),
		}
	}
	stored, err := b.store.Transition(ctx, t)
	if orderflow.ErrorCode(err) == orderflow.EConflict {
		return nil // moved meanwhile; the next round looks again if need be
	}
	if err != nil {
		return err
	}
	d.Receipt, d.DeadLettered, d.Ended, d.Order = "", true, &t, &stored
	b.report(d)
	if t.To == orderflow.StatusFailed {
		return b.store.Release(ctx, o.ID)
	}
	return nil
}

// sweeper re-sends the messages of orders that stayed PENDING too long:
// the api wrote them but died before sending (see awsIntake.Accept).
type sweeper struct {
	store interface {
		SweepPending(ctx context.Context, before time.Time, limit int) ([]orderflow.Order, error)
	}
	queue interface {
		Send(ctx context.Context, msgs ...orderflow.Message) error
	}
	after time.Duration
	log   *slog.Logger
	now   func() time.Time
}

// sweepBatch bounds the orders one sweep re-sends.
const sweepBatch = 100

func (s *sweeper) run(ctx context.Context) error {
	every := min(max(s.after/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for s.sweep(ctx) == sweepBatch {
		}
	}
}

// sweep re-sends one batch and returns how many orders it found.
func (s *sweeper) sweep(ctx context.Context) int {
	orders, err := s.store.SweepPending(ctx, s.now().Add(-s.after), sweepBatch)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("sweep of pending orders", "err", err)
	}
	if len(orders) == 0 {
		return 0
	}
	msgs := make([]orderflow.Message, len(orders))
	for i, o := range orders {
		msgs[i] = orderflow.Message{OrderID: o.ID, RequestID: o.RequestID}
		s.log.WarnContext(orderflow.WithOrderID(ctx, o.ID), "order still PENDING; sending its message again", "created_at", o.CreatedAt)
	}
	if err := s.queue.Send(ctx, msgs...); err != nil && ctx.Err() == nil {
		// They come up again one sweep period later.
		s.log.Warn("re-send of pending orders", "err", err)
	}
	return len(orders)
}
