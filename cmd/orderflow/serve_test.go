package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/logtest"
)

// TestServeStopsWhatStartedWhenAPartCannotStart: serve returns the error
// of a part that cannot start, and the parts it had started stop (the
// api's address is free again).
func TestServeStopsWhatStartedWhenAPartCannotStart(t *testing.T) {
	env := testEnv(t, nil)
	taken, err := net.Listen("tcp", env["ORDERFLOW_PROCESSOR_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, _, err = runCmdErr(env, "serve")
	if err == nil || !strings.Contains(err.Error(), "ORDERFLOW_PROCESSOR_ADDR") {
		t.Fatalf("serve with the processor's address taken: got %v, want an error naming ORDERFLOW_PROCESSOR_ADDR", err)
	}
	ln, err := net.Listen("tcp", env["ORDERFLOW_API_ADDR"])
	if err != nil {
		t.Fatalf("the api's address after serve returned: %v, want it free", err)
	}
	ln.Close()
}

// At SIGTERM the api answers /ready with 503 while it goes on serving
// (health and orders) for ORDERFLOW_SHUTDOWN_DELAY, and only then stops
// listening: a load balancer that still sends it requests sees it leave.
func TestAPITurnsNotReadyAtSIGTERMBeforeItStopsListening(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_SHUTDOWN_DELAY": "3s"})
	ctx, cancel := context.WithCancel(context.Background())
	out := &logtest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenvOf(env), strings.NewReader(""), out, out) }()
	api := "http://" + env["ORDERFLOW_API_ADDR"]
	waitReady(t, api+"/ready", done, out)
	token := login(t, api, "leaving")

	cancel() // what SIGTERM does in main
	stopped := time.Now()
	waitStatus(t, api+"/ready", 503)
	if resp := call(t, "POST", api+"/orders", token, map[string]any{"amount": 100}, nil); resp.StatusCode != 202 {
		t.Errorf("POST /orders while leaving: got %d, want 202 (the api still serves)", resp.StatusCode)
	}
	if resp := call(t, "GET", api+"/health", "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("GET /health while leaving: got %d, want 200", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop within 30s of the signal\n%s", out)
	}
	if d := time.Since(stopped); d < 3*time.Second {
		t.Errorf("the api stopped %v after the signal, before its 3s shutdown delay", d)
	}
	if _, err := net.Dial("tcp", env["ORDERFLOW_API_ADDR"]); err == nil {
		t.Errorf("the api still listens after run returned")
	}
}

// TestAWSProcessorWatchesTheDeadLetterQueue: the processor of the AWS
// mode watches the dead-letter queue and ends the order of a message found
// there (a PENDING order: FAILED, dead_lettered).
func TestAWSProcessorWatchesTheDeadLetterQueue(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), map[string]string{"ORDERFLOW_DLQ_WATCH_INTERVAL": "200ms"})
	startRun(t, env, "processor")
	cfg := awstest.Config(env["AWS_ENDPOINT_URL"])
	st := dynamostore.New(dynamodb.NewFromConfig(cfg), env["DDB_TABLE"], dynamostore.Options{})
	o := pendingWithoutMessage(t, st, "dora")
	_, err := sqs.NewFromConfig(cfg).SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(env["SQS_DLQ_URL"]), MessageBody: aws.String(string(orderflow.EncodeMessage(orderflow.Message{OrderID: o.ID}))),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := waitOrder(t, st, o.ID, orderflow.StatusFailed)
	if got.Failure == nil || got.Failure.Code != orderflow.ReasonDeadLettered {
		t.Errorf("order of the dead message ended with %+v, want %s", got.Failure, orderflow.ReasonDeadLettered)
	}
}

// pendingWithoutMessage writes a PENDING order of user to st and sends no
// message for it, as an api that died between the two does.
func pendingWithoutMessage(t *testing.T, st *dynamostore.Store, user string) orderflow.Order {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orderflow.Order{ID: orderflow.NewOrderID(now), UserID: user, Amount: 1000, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now, UpdatedAt: now}
	if _, err := st.BeginOrder(context.Background(), o, orderflow.IdempotencyKey{UserID: o.UserID}); err != nil {
		t.Fatal(err)
	}
	return o
}

// waitOrder polls st until order id is in status want, for up to 30s.
func waitOrder(t *testing.T, st *dynamostore.Store, id orderflow.OrderID, want orderflow.Status) orderflow.Order {
	t.Helper()
	deadline := time.After(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		got, err := st.GetOrder(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == want {
			return got
		}
		select {
		case <-deadline:
			t.Fatalf("order %s is %s after 30s, want %s", id, got.Status, want)
		case <-poll.C:
		}
	}
}

// TestAWSProcessorSweepsPendingOrders: the processor of the AWS mode runs
// the pending sweep, so that an order whose message was never sent (the
// api died between writing the order and sending it) is processed.
func TestAWSProcessorSweepsPendingOrders(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), map[string]string{"ORDERFLOW_SWEEP_AFTER": "1s"})
	startRun(t, env, "processor")
	st := dynamostore.New(dynamodb.NewFromConfig(awstest.Config(env["AWS_ENDPOINT_URL"])), env["DDB_TABLE"], dynamostore.Options{})
	o := pendingWithoutMessage(t, st, "sam")
	waitOrder(t, st, o.ID, orderflow.StatusCompleted)
}
