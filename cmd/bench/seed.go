package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
)

// seedWorkers is how many receive loops the seed's processor runs.
const seedWorkers = 4

// seed is the seed's own design (spec/000: a FastAPI api with boto3 and a
// Go processor), rebuilt here as the cost baseline: the api sends one
// SendMessage per order and answers 202; the processor's loops each
// ReceiveMessage up to 10 with a 20 s long poll, write each order's final
// state to DynamoDB with one PutItem (the spec's "the processor writes the
// final state to DynamoDB": the api writes nothing, and there is no
// idempotency record, stock or charge), and DeleteMessage each message
// alone. Every request is counted as aws_requests_total would count it.
type seed struct {
	sqs      *sqs.Client
	ddb      *dynamodb.Client
	queueURL string
	table    string

	mu       sync.Mutex
	requests map[string]float64 // aws_requests_total-style label list → count
	done     atomic.Int64
}

// newSeed creates the seed's queue on sqsEndpoint and table on ddbEndpoint.
func newSeed(ctx context.Context, sqsEndpoint, ddbEndpoint string) (*seed, error) {
	s := &seed{requests: map[string]float64{}}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}}
	count := func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("BenchCount",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				key := fmt.Sprintf(`caller="seed",operation="%s",service="%s"`, awsmiddleware.GetOperationName(ctx), strings.ToLower(awsmiddleware.GetServiceID(ctx)))
				s.mu.Lock()
				s.requests[key]++
				s.mu.Unlock()
				return out, md, err
			}), middleware.After)
	}
	s.sqs = sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(sqsEndpoint)
		o.APIOptions = append(o.APIOptions, count)
	})
	s.ddb = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddbEndpoint)
		o.APIOptions = append(o.APIOptions, count)
	})
	name := "seed-" + randomHex(6)
	q, err := s.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("seed queue: %w", err)
	}
	s.queueURL, s.table = aws.ToString(q.QueueUrl), name
	if _, err := s.ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("order_id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("order_id"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		return nil, fmt.Errorf("seed table: %w", err)
	}
	return s, nil
}

// snapshot returns a copy of the request counts.
func (s *seed) snapshot() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]float64, len(s.requests))
	for k, v := range s.requests {
		m[k] = v
	}
	return m
}

// ServeHTTP is the seed's POST /orders: one SendMessage, then 202.
func (s *seed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Amount int64 `json:"amount"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := randomHex(16)
	msg, _ := json.Marshal(map[string]any{"order_id": id, "user_id": "bench", "amount": body.Amount})
	if _, err := s.sqs.SendMessage(r.Context(), &sqs.SendMessageInput{QueueUrl: &s.queueURL, MessageBody: aws.String(string(msg))}); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"order_id":%q,"status":"PENDING"}`, id)
}

// work is one receive loop of the seed's processor, until ctx ends.
func (s *seed) work(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := s.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &s.queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 20})
		if err != nil {
			continue
		}
		for _, m := range out.Messages {
			var o struct {
				OrderID string `json:"order_id"`
				Amount  int64  `json:"amount"`
			}
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &o) != nil {
				continue
			}
			_, err := s.ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: map[string]ddbtypes.AttributeValue{
				"order_id":   &ddbtypes.AttributeValueMemberS{Value: o.OrderID},
				"status":     &ddbtypes.AttributeValueMemberS{Value: "COMPLETED"},
				"amount":     &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(o.Amount)},
				"updated_at": &ddbtypes.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)},
			}})
			if err != nil {
				continue // redelivered after the visibility timeout
			}
			if _, err := s.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &s.queueURL, ReceiptHandle: m.ReceiptHandle}); err == nil {
				s.done.Add(1)
			}
		}
	}
}

// measureSeed runs the seed's design on the given endpoints under the
// bench's load, paced at pace orders/s, until every accepted order is
// done, and returns its cost and its load result.
func measureSeed(o options, sqsEndpoint, ddbEndpoint string, pace float64) (awsCost, result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := newSeed(ctx, sqsEndpoint, ddbEndpoint)
	if err != nil {
		return awsCost{}, result{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return awsCost{}, result{}, err
	}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); s.work(ctx) }()
	}
	before := s.snapshot()
	res := load(o, "http://"+ln.Addr().String()+"/orders", []string{"x"}, pace)
	deadline := time.Now().Add(5 * time.Minute)
	for s.done.Load() < int64(res.ok) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	after := s.snapshot() // before the loops' last long polls end
	cancel()
	wg.Wait()
	if s.done.Load() < int64(res.ok) {
		return awsCost{}, res, errors.New("the seed's design did not finish its orders within 5 minutes")
	}
	return costOf(before, after, float64(s.done.Load())), res, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}
