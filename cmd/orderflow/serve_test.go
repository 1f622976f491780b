package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
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

// TestAWSProcessorSweepsPendingOrders: the processor of the AWS mode runs
// the pending sweep, so that an order whose message was never sent (the
// api died between writing the order and sending it) is processed.
func TestAWSProcessorSweepsPendingOrders(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), map[string]string{"ORDERFLOW_SWEEP_AFTER": "1s"})
	startRun(t, env, "processor")
	st := dynamostore.New(dynamodb.NewFromConfig(awstest.Config(env["AWS_ENDPOINT_URL"])), env["DDB_TABLE"], dynamostore.Options{})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orderflow.Order{ID: orderflow.NewOrderID(now), UserID: "sam", Amount: 1000, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now, UpdatedAt: now}
	if _, err := st.BeginOrder(ctx, o, orderflow.IdempotencyKey{UserID: o.UserID}); err != nil { // and no message
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		got, err := st.GetOrder(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == orderflow.StatusCompleted {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("order without a message is %s after 30s, want COMPLETED (swept)", got.Status)
		case <-poll.C:
		}
	}
}
