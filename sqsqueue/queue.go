package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow"
)

// Limits of SQS.
const (
	maxBatch       = 10              // entries per batch call, messages per receive
	maxWaitSeconds = 20              // longest long poll
	maxVisibility  = 12 * time.Hour  // longest visibility timeout
	maxRawBody     = 256 << 10       // largest message body
	defaultTimeout = 5 * time.Second // default CallTimeout
)

// Message attribute names that carry the request id and trace context
// beside the body, so that SQS consoles and other consumers see them.
const (
	attrRequestID   = "request_id"
	attrTraceParent = "traceparent"
)

// Options configures a Queue.
type Options struct {
	// QueueURL is the order queue (required).
	QueueURL string
	// DLQURL is its dead-letter queue; if empty, Open finds it from the
	// queue's RedrivePolicy.
	DLQURL string
	// CallTimeout bounds every call to SQS (a long poll gets its wait on
	// top). Default 5s.
	CallTimeout time.Duration
	// FlushDelay is how long Send waits for more messages to fill a batch
	// (default DefaultSendWindow; negative: no wait, only the Sends made
	// at the same moment share a batch).
	FlushDelay time.Duration
	// ReceiveLinger is the pause before the next Receive once one came
	// back short, so that the next carries what arrived meanwhile (see
	// pacer; default DefaultReceiveLinger; negative: none, every Receive
	// goes at once).
	ReceiveLinger time.Duration
	// Logger receives warnings; default: discard.
	Logger *slog.Logger
	// TracerProvider makes the "sqs send" span of a Send whose caller is
	// in a recording span (see send.go). Default: none.
	TracerProvider trace.TracerProvider
}

// Queue is an orderflow.Queue and orderflow.DeadLetters on SQS. It is safe
// for concurrent use and needs no Close: it owns no goroutine beyond a
// batch being flushed.
type Queue struct {
	client *sqs.Client
	opts   Options
	log    *slog.Logger
	tracer trace.Tracer

	pace *pacer // nil without a ReceiveLinger

	policyMu sync.Mutex
	policy   *orderflow.QueuePolicy // nil until read (see Policy)

	mu  sync.Mutex
	cur *batch // the batch Send is filling, nil if none
}

var (
	_ orderflow.Queue       = (*Queue)(nil)
	_ orderflow.DeadLetters = (*Queue)(nil)
)

// Open returns a Queue on opts.QueueURL. Without opts.DLQURL it reads the
// queue's attributes to find the dead-letter queue (and keeps its Policy);
// an error then means the queue cannot be reached or has no dead-letter
// queue. With opts.DLQURL it makes no call, so that a program can start
// while SQS cannot be reached, and reports it through Ping.
func Open(ctx context.Context, client *sqs.Client, opts Options) (*Queue, error) {
	if opts.QueueURL == "" {
		return nil, orderflow.Errorf(orderflow.EInvalid, "sqs: a queue URL is required")
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = defaultTimeout
	}
	if opts.FlushDelay == 0 {
		opts.FlushDelay = DefaultSendWindow
	}
	if opts.ReceiveLinger == 0 {
		opts.ReceiveLinger = DefaultReceiveLinger
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = noop.NewTracerProvider()
	}
	q := &Queue{client: client, opts: opts, log: opts.Logger, tracer: opts.TracerProvider.Tracer("github.com/orderflow/orderflow/sqsqueue")}
	if opts.ReceiveLinger > 0 {
		q.pace = newPacer(opts.ReceiveLinger)
	}
	if opts.DLQURL == "" {
		dlqARN, _, err := q.readPolicy(ctx)
		if err != nil {
			return nil, err
		}
		url, err := q.queueURL(ctx, dlqARN)
		if err != nil {
			return nil, err
		}
		q.opts.DLQURL = url
	}
	return q, nil
}

// URL returns the order queue's URL.
func (q *Queue) URL() string { return q.opts.QueueURL }

// DLQURL returns the dead-letter queue's URL.
func (q *Queue) DLQURL() string { return q.opts.DLQURL }

// Policy returns the queue's redelivery policy: its VisibilityTimeout and
// its RedrivePolicy's maxReceiveCount, read from SQS on the first call (or
// by Open) and kept. EUnavailable while SQS cannot be reached; EInvalid
// for a queue without a RedrivePolicy.
func (q *Queue) Policy(ctx context.Context) (orderflow.QueuePolicy, error) {
	q.policyMu.Lock()
	defer q.policyMu.Unlock()
	if q.policy != nil {
		return *q.policy, nil
	}
	_, p, err := q.readPolicy(ctx)
	return p, err
}

// readPolicy reads the queue's VisibilityTimeout and RedrivePolicy, keeps
// the policy they make in q.policy, and returns the ARN of the dead-letter
// queue.
func (q *Queue) readPolicy(ctx context.Context) (dlqARN string, p orderflow.QueuePolicy, err error) {
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &q.opts.QueueURL,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameRedrivePolicy, types.QueueAttributeNameVisibilityTimeout,
		},
	})
	if err != nil {
		return "", p, mapErr(err, "read redrive policy of %s", q.opts.QueueURL)
	}
	arn, maxReceives, err := redriveTarget(out.Attributes[string(types.QueueAttributeNameRedrivePolicy)])
	if err != nil {
		return "", p, orderflow.Errorf(orderflow.EInvalid, "queue %s: %v; run orderflow init", q.opts.QueueURL, err)
	}
	vt, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	if err != nil || vt < 0 {
		return "", p, orderflow.Errorf(orderflow.EInvalid, "queue %s: VisibilityTimeout %q is not a number of seconds",
			q.opts.QueueURL, out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	}
	p = orderflow.QueuePolicy{VisibilityTimeout: time.Duration(vt) * time.Second, MaxReceives: maxReceives}
	q.policy = &p
	return arn, p, nil
}

// queueURL resolves the URL of the queue arn names, from the name and
// account alone: the ARN's region is not used (ElasticMQ's ARNs carry the
// region of its configuration, "elasticmq" by default).
func (q *Queue) queueURL(ctx context.Context, arn string) (string, error) {
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	name, account := arnQueue(arn)
	in := &sqs.GetQueueUrlInput{QueueName: &name}
	if account != "" {
		in.QueueOwnerAWSAccountId = &account
	}
	u, err := q.client.GetQueueUrl(ctx, in)
	if err != nil {
		return "", mapErr(err, "find dead-letter queue %s", name)
	}
	return aws.ToString(u.QueueUrl), nil
}

// callCtx bounds one call: CallTimeout plus extra (a long poll's wait).
func (q *Queue) callCtx(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, q.opts.CallTimeout+extra)
}

// SendRaw enqueues body as it is (the poison-message tests use it).
func (q *Queue) SendRaw(ctx context.Context, body []byte) error {
	if len(body) > maxRawBody {
		return orderflow.Errorf(orderflow.EInvalid, "message of %d bytes exceeds %d", len(body), maxRawBody)
	}
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &q.opts.QueueURL, MessageBody: aws.String(string(body))})
	return mapErr(err, "send message")
}

// Receive long-polls for up to n (at most 10) messages, waiting up to
// wait (whole seconds, at most 20; a fraction of a second rounds up).
// Once a Receive came back short, the next waits out ReceiveLinger first
// and concurrent ones go one at a time until one comes back full (see
// pacer); a ctx that ends in that wait ends it with EUnavailable.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]orderflow.Delivery, error) {
	if q.pace == nil {
		return q.receive(ctx, q.opts.QueueURL, n, wait, 0)
	}
	done, err := q.pace.wait(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := q.receive(ctx, q.opts.QueueURL, n, wait, 0)
	done(len(ds), min(max(n, 1), maxBatch), err)
	return ds, err
}

// receive receives from url; hide, if positive, overrides the queue's
// visibility timeout.
func (q *Queue) receive(ctx context.Context, url string, n int, wait, hide time.Duration) ([]orderflow.Delivery, error) {
	ms, err := q.receiveMessages(ctx, url, n, wait, hide)
	ds := make([]orderflow.Delivery, 0, len(ms))
	for _, m := range ms {
		ds = append(ds, delivery(m))
	}
	return ds, err
}

// receiveMessages is receive's call to SQS, returning the messages as SQS
// sent them.
func (q *Queue) receiveMessages(ctx context.Context, url string, n int, wait, hide time.Duration) ([]types.Message, error) {
	n = min(max(n, 1), maxBatch)
	secs := int32(min(math.Ceil(wait.Seconds()), maxWaitSeconds))
	if secs < 0 {
		secs = 0
	}
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    &url,
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             secs,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		MessageAttributeNames:       []string{"All"},
	}
	if hide > 0 {
		in.VisibilityTimeout = int32(hide / time.Second)
	}
	cctx, cancel := q.callCtx(ctx, time.Duration(secs)*time.Second)
	defer cancel()
	out, err := q.client.ReceiveMessage(cctx, in)
	if err != nil {
		return nil, mapErr(err, "receive messages")
	}
	return out.Messages, nil
}

// delivery turns an SQS message into a Delivery; a body that does not
// decode is delivered with Err set, for the dead-letter path.
func delivery(m types.Message) orderflow.Delivery {
	body := []byte(aws.ToString(m.Body))
	d := orderflow.Delivery{MessageID: aws.ToString(m.MessageId), Receipt: aws.ToString(m.ReceiptHandle), Body: body}
	d.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	d.Message, d.Err = orderflow.DecodeMessage(body)
	// The attribute is the trace context for every consumer of SQS; a
	// producer other than ours may set only it.
	if a, ok := m.MessageAttributes[attrTraceParent]; ok && d.Err == nil {
		if v := aws.ToString(a.StringValue); v != "" && len(v) <= 128 {
			d.TraceParent = v
		}
	}
	return d
}

// Delete deletes receipts with DeleteMessageBatch, 10 at a time. Entries
// SQS refuses (such as stale receipts) are returned in a
// *orderflow.BatchError keyed by receipt; a call that fails as a whole
// counts all its receipts as failed, with the cause EUnavailable.
func (q *Queue) Delete(ctx context.Context, receipts ...string) error {
	return q.deleteFrom(ctx, q.opts.QueueURL, receipts)
}

func (q *Queue) deleteFrom(ctx context.Context, url string, receipts []string) error {
	failed := map[string]error{}
	var callErr error
	for start := 0; start < len(receipts); start += maxBatch {
		chunk := receipts[start:min(start+maxBatch, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		cctx, cancel := q.callCtx(ctx, 0)
		out, err := q.client.DeleteMessageBatch(cctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries})
		cancel()
		if err != nil {
			err = mapErr(err, "delete messages")
			callErr = err
			for _, r := range chunk {
				failed[r] = err
			}
			continue
		}
		for _, f := range out.Failed {
			i, convErr := strconv.Atoi(aws.ToString(f.Id))
			if convErr != nil || i < 0 || i >= len(chunk) {
				continue
			}
			failed[chunk[i]] = entryErr(f, "delete message")
		}
	}
	if len(failed) == 0 {
		return nil
	}
	if callErr != nil && len(failed) == len(receipts) {
		// Nothing was deleted: say why plainly, still as a BatchError's
		// worth of detail for callers that look.
		return &batchUnavailable{BatchError: &orderflow.BatchError{Failed: failed}, cause: callErr}
	}
	return &orderflow.BatchError{Failed: failed}
}

// batchUnavailable is a BatchError whose every entry failed because SQS
// could not be reached; errors.As finds both the *orderflow.BatchError and
// the EUnavailable *orderflow.Error.
type batchUnavailable struct {
	*orderflow.BatchError
	cause error
}

func (e *batchUnavailable) Unwrap() []error { return []error{e.BatchError, e.cause} }

// entryErr describes one failed batch entry: SQS's own failures are
// EUnavailable (retry), the sender's (a stale receipt) ENotFound.
func entryErr(f types.BatchResultErrorEntry, what string) error {
	code := orderflow.ENotFound
	if !f.SenderFault {
		code = orderflow.EUnavailable
	}
	return &orderflow.Error{Code: code, Detail: fmt.Sprintf("%s: %s: %s", what, aws.ToString(f.Code), aws.ToString(f.Message))}
}

// ChangeVisibility hides the message of receipt for timeout from now,
// rounded to whole seconds (0 makes it visible at once). A stale or
// unknown receipt is an error.
func (q *Queue) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	return q.changeVisibility(ctx, q.opts.QueueURL, receipt, timeout)
}

func (q *Queue) changeVisibility(ctx context.Context, url, receipt string, timeout time.Duration) error {
	if timeout < 0 || timeout > maxVisibility {
		return orderflow.Errorf(orderflow.EInvalid, "visibility timeout %v is outside 0..%v", timeout, maxVisibility)
	}
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          &url,
		ReceiptHandle:     &receipt,
		VisibilityTimeout: int32(math.Round(timeout.Seconds())),
	})
	return mapErr(err, "change visibility")
}

// Depth reads the approximate counts of the queue and its dead-letter
// queue (two GetQueueAttributes calls). SQS updates them with a lag.
func (q *Queue) Depth(ctx context.Context) (orderflow.QueueDepth, error) {
	visible, inFlight, err := q.counts(ctx, q.opts.QueueURL)
	if err != nil {
		return orderflow.QueueDepth{}, err
	}
	deadVisible, deadHidden, err := q.counts(ctx, q.opts.DLQURL)
	if err != nil {
		return orderflow.QueueDepth{}, err
	}
	return orderflow.QueueDepth{Visible: visible, InFlight: inFlight, Dead: deadVisible + deadHidden}, nil
}

func (q *Queue) counts(ctx context.Context, url string) (visible, hidden int, err error) {
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		return 0, 0, mapErr(err, "read queue attributes")
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	hidden, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, hidden, nil
}

// Ping reads one attribute of the queue.
func (q *Queue) Ping(ctx context.Context) error {
	ctx, cancel := q.callCtx(ctx, 0)
	defer cancel()
	_, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &q.opts.QueueURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	return mapErr(err, "reach queue")
}

// errors.Is helper kept close to its only use.
var errNoRedrive = errors.New("the queue has no RedrivePolicy with a deadLetterTargetArn and a maxReceiveCount")
