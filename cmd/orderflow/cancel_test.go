package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/sqlite"
)

// cancelBooks is what the cancel tests do and read in the store behind a
// running program: the steps of a processor attempt that died (start,
// reserve, charge), and the outcome.
type cancelBooks interface {
	StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error)
	Reserve(ctx context.Context, id orderflow.OrderID, items []orderflow.Item) (*orderflow.Failure, error)
	RecordCharge(ctx context.Context, c orderflow.Charge) (orderflow.Charge, bool, error)
	Charges(ctx context.Context, id orderflow.OrderID) ([]orderflow.Charge, error)
	Stock(ctx context.Context, sku string) (int, error)
}

// TestSplitModeCancelInEveryState: the api and the processor as two
// processes on one SQLite file.
func TestSplitModeCancelInEveryState(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_STOCK": "widget:10"})
	testCancelInEveryState(t, env, func() cancelBooks {
		db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestAWSCancelInEveryState: the same on SQS and DynamoDB (moto).
func TestAWSCancelInEveryState(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), map[string]string{"ORDERFLOW_STOCK": "widget:10"})
	testCancelInEveryState(t, env, func() cancelBooks {
		return dynamostore.New(dynamodb.NewFromConfig(awstest.Config(ddbEndpoint(env))), env["DDB_TABLE"], dynamostore.Options{})
	})
}

// testCancelInEveryState cancels orders held in each state by running the
// api alone first: a PENDING order (cancelled at once; its message
// dropped by the processor), a PROCESSING order whose attempt died before
// reserving (cancelled before the reserve: nothing to release, nothing
// charged), one whose attempt died after reserving (cancelled before the
// charge: stock back, nothing charged), a
// PROCESSING order whose attempt died after the charge went through
// (cancelled with a refund), then a final order (409), another user's
// order (404) and a second cancel (200).
func testCancelInEveryState(t *testing.T, env map[string]string, open func() cancelBooks) {
	logs := t.TempDir()
	startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	api, proc := "http://"+env["ORDERFLOW_API_ADDR"], "http://"+env["ORDERFLOW_PROCESSOR_ADDR"]
	alice, bob := login(t, api, "alice"), login(t, api, "bob")
	widget := map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "widget", "quantity": 1}}}
	place := func() accepted {
		var a accepted
		if resp := call(t, "POST", api+"/orders", alice, widget, &a); resp.StatusCode != 202 {
			t.Fatalf("create: got %d", resp.StatusCode)
		}
		return a
	}
	pending, started, reserved, paid := place(), place(), place(), place()
	books := open()
	ctx := context.Background()
	for _, a := range []accepted{started, reserved, paid} {
		id := orderflow.OrderID(a.OrderID)
		if _, err := books.StartOrder(ctx, id, time.Now()); err != nil {
			t.Fatal(err)
		}
		if a == started {
			continue
		}
		if f, err := books.Reserve(ctx, id, []orderflow.Item{{SKU: "widget", Quantity: 1}}); err != nil || f != nil {
			t.Fatalf("reserve: %v %v", f, err)
		}
	}
	if _, _, err := books.RecordCharge(ctx, orderflow.Charge{ID: "ch_" + paid.OrderID, IdempotencyKey: paid.OrderID, OrderID: orderflow.OrderID(paid.OrderID), Amount: 1250, Currency: "USD", At: time.Now()}); err != nil {
		t.Fatal(err)
	}

	cancel := func(token string, a accepted, want int) statusDoc {
		t.Helper()
		var doc statusDoc
		out := any(&doc)
		if want >= 300 {
			out = nil // a problem document
		}
		if resp := call(t, "POST", api+"/orders/"+a.OrderID+"/cancel", token, nil, out); resp.StatusCode != want {
			t.Fatalf("cancel %s: got %d, want %d", a.OrderID, resp.StatusCode, want)
		}
		return doc
	}
	cancel(bob, pending, 404)
	if doc := cancel(alice, pending, 200); doc.Status != "CANCELLED" || doc.Cancellation == nil || doc.Cancellation.CancelledAt == nil {
		t.Errorf("cancel of a PENDING order: %+v, want CANCELLED at once", doc)
	}
	cancel(alice, pending, 200) // again: idempotent
	for _, a := range []accepted{started, reserved, paid} {
		if doc := cancel(alice, a, 202); doc.Status != "PROCESSING" || doc.Cancellation == nil || doc.Cancellation.CancelledAt != nil {
			t.Errorf("cancel of an order in work: %+v, want PROCESSING with the request", doc)
		}
	}
	waitForMetrics(t, api+"/metrics", 5*time.Second, `orders_processed_total{env="local",status="cancelled"} 1`)

	startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	for _, tt := range []struct {
		name     string
		a        accepted
		refunded bool
		charges  int
	}{
		{"the PENDING order stays CANCELLED, its message dropped", pending, false, 0},
		{"the order cancelled before its reserve is not charged", started, false, 0},
		{"the order cancelled before its charge is not charged", reserved, false, 0},
		{"the order charged before the processor saw the cancel is refunded", paid, true, 1},
	} {
		doc := pollUntilTerminal(t, tt.a.StatusURL, 30*time.Second)
		if doc.Status != "CANCELLED" || doc.Cancellation == nil || doc.Cancellation.Refunded != tt.refunded ||
			(doc.Cancellation.RefundID != "") != tt.refunded || doc.Cancellation.CancelledAt == nil {
			t.Errorf("%s: got %s %+v, want CANCELLED, refunded=%v", tt.name, doc.Status, doc.Cancellation, tt.refunded)
		}
		if cs, err := books.Charges(ctx, orderflow.OrderID(tt.a.OrderID)); err != nil || len(cs) != tt.charges {
			t.Errorf("%s: %d charges (%v), want %d", tt.name, len(cs), err, tt.charges)
		}
	}
	waitForMetrics(t, proc+"/metrics", 10*time.Second,
		`orders_processed_total{env="local",status="cancelled"} 3`, `orders_processed_total{env="local",status="success"} 0`)
	if n, err := books.Stock(ctx, "widget"); err != nil || n != 10 {
		t.Errorf("widget stock = %d (%v), want 10: both reservations released", n, err)
	}

	done := place()
	if doc := pollUntilTerminal(t, done.StatusURL, 30*time.Second); doc.Status != "COMPLETED" {
		t.Fatalf("a new order ended %s, want COMPLETED", doc.Status)
	}
	var p struct {
		Type string `json:"type"`
	}
	if resp := call(t, "POST", api+"/orders/"+done.OrderID+"/cancel", alice, nil, &p); resp.StatusCode != 409 || p.Type != "https://orderflow.dev/problems/order-final" {
		t.Errorf("cancel of a COMPLETED order: %d %s, want 409 order-final", resp.StatusCode, p.Type)
	}
	if n, err := books.Stock(ctx, "widget"); err != nil || n != 9 {
		t.Errorf("widget stock = %d (%v), want 9 after one completed order", n, err)
	}
}

// TestCancelAnOrderInWork (embedded mode, one process): an order held in
// the payment stage by the gateway's latency is cancelled while in work
// (202) and ends CANCELLED, never COMPLETED; it was not charged, or its
// charge was refunded.
func TestCancelAnOrderInWork(t *testing.T) {
	env := testEnv(t, map[string]string{"ORDERFLOW_PAYMENT_LATENCY": "1500ms", "ORDERFLOW_STOCK": "widget:10"})
	in := startRun(t, env)
	token := login(t, in.api, "ivy")
	var a accepted
	if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "widget", "quantity": 2}}}, &a); resp.StatusCode != 202 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var doc statusDoc
		call(t, "GET", a.StatusURL, "", nil, &doc)
		if doc.Status == "PROCESSING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still %s", doc.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp := call(t, "POST", in.api+"/orders/"+a.OrderID+"/cancel", token, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("cancel in work: %d, want 202", resp.StatusCode)
	}
	doc := pollUntilTerminal(t, a.StatusURL, 20*time.Second)
	if doc.Status != "CANCELLED" || doc.Cancellation == nil {
		t.Fatalf("order ended %s %+v, want CANCELLED", doc.Status, doc.Cancellation)
	}
	db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs, err := db.Charges(context.Background(), orderflow.OrderID(a.OrderID))
	if err != nil || len(cs) != btoi(doc.Cancellation.Refunded) {
		t.Errorf("%d charges (%v) with refunded=%v: a charge must come with its refund", len(cs), err, doc.Cancellation.Refunded)
	}
	if n, err := db.Stock(context.Background(), "widget"); err != nil || n != 10 {
		t.Errorf("widget stock = %d (%v), want 10 (released)", n, err)
	}
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second, fmt.Sprintf(`orders_processed_total{env="local",status="cancelled"} %d`, 1))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
