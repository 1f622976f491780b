package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/sqsqueue"
)

// awsCredentials gives the SDK's standard chain static test credentials
// and keeps it off the EC2 metadata endpoint, for the whole test binary
// (TestMain): the SDK reads the environment itself, and setting it once
// lets the AWS tests run their SQS backends in parallel.
func awsCredentials() {
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"} {
		os.Setenv(k, v)
	}
}

var exportRE = regexp.MustCompile(`^export SQS_QUEUE_URL=(\S+) SQS_DLQ_URL=(\S+) DDB_TABLE=(\S+)\n$`)

// awsEnv returns testEnv in the AWS mode on moto (or the endpoint given),
// with a fresh queue, dead-letter queue and table made by orderflow init.
func awsEnv(t *testing.T, endpoint string, overrides map[string]string) map[string]string {
	t.Helper()
	return awsEnvOn(t, awstest.Backend{Name: "moto", SQS: endpoint, DynamoDB: endpoint}, overrides)
}

// closedEndpoint is an address nothing listens on.
const closedEndpoint = "http://127.0.0.1:1"

// awsEnvOn is awsEnv on backend b. When b's SQS is not its DynamoDB (SQS
// on ElasticMQ), the two come from AWS_ENDPOINT_URL_SQS and
// AWS_ENDPOINT_URL_DYNAMODB, with AWS_ENDPOINT_URL on a closed port: a
// call that took the global endpoint instead of its service's would fail.
func awsEnvOn(t *testing.T, b awstest.Backend, overrides map[string]string) map[string]string {
	t.Helper()
	name := awstest.Name("of")
	settings := map[string]string{
		"AWS_ENDPOINT_URL":             b.SQS,
		"AWS_REGION":                   awstest.Region,
		"ORDERFLOW_QUEUE_NAME":         name,
		"ORDERFLOW_DLQ_NAME":           name + "-dlq",
		"ORDERFLOW_TABLE_NAME":         name,
		"ORDERFLOW_AWS_CALL_TIMEOUT":   "2s",
		"ORDERFLOW_DLQ_WATCH_INTERVAL": "2s",
	}
	if b.SQS != b.DynamoDB {
		settings["AWS_ENDPOINT_URL"] = closedEndpoint
		settings["AWS_ENDPOINT_URL_SQS"] = b.SQS
		settings["AWS_ENDPOINT_URL_DYNAMODB"] = b.DynamoDB
	}
	env := testEnv(t, settings)
	for k, v := range overrides {
		env[k] = v
	}
	out, _ := runCmd(t, env, "init")
	m := exportRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("orderflow init printed %q, want one export line", out)
	}
	env["SQS_QUEUE_URL"], env["SQS_DLQ_URL"], env["DDB_TABLE"] = m[1], m[2], m[3]
	return env
}

// ddbEndpoint is the DynamoDB endpoint of an awsEnvOn environment.
func ddbEndpoint(env map[string]string) string {
	if e := env["AWS_ENDPOINT_URL_DYNAMODB"]; e != "" {
		return e
	}
	return env["AWS_ENDPOINT_URL"]
}

// TestInitIsIdempotent: init creates the queues and the table, and a second
// run finds them and prints the same settings; on each SQS backend, so
// that init also follows the per-service endpoints.
func TestInitIsIdempotent(t *testing.T) {
	awstest.ForEachSQS(t, testInitIsIdempotent)
}

func testInitIsIdempotent(t *testing.T, b awstest.Backend) {
	env := awsEnvOn(t, b, map[string]string{"ORDERFLOW_MAX_RECEIVES": "4"})
	again, _ := runCmd(t, env, "init")
	want := fmt.Sprintf("export SQS_QUEUE_URL=%s SQS_DLQ_URL=%s DDB_TABLE=%s\n", env["SQS_QUEUE_URL"], env["SQS_DLQ_URL"], env["DDB_TABLE"])
	if again != want {
		t.Errorf("second init printed %q, want %q", again, want)
	}
	// The queues live on the backend's SQS (ElasticMQ's URLs are
	// http://host:port/000000000000/NAME, moto's carry its account id).
	if !strings.HasPrefix(env["SQS_QUEUE_URL"], b.SQS+"/") {
		t.Errorf("queue URL %s, want one on %s", env["SQS_QUEUE_URL"], b.SQS)
	}
	if !strings.HasSuffix(env["SQS_DLQ_URL"], env["ORDERFLOW_DLQ_NAME"]) || env["DDB_TABLE"] != env["ORDERFLOW_TABLE_NAME"] {
		t.Errorf("init used names %v, want those of the settings", env)
	}
	client := sqs.NewFromConfig(awstest.Config(b.SQS))
	attrs, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(env["SQS_QUEUE_URL"]), AttributeNames: []sqstypes.QueueAttributeName{"RedrivePolicy"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		MaxReceiveCount json.Number `json:"maxReceiveCount"`
	}
	if p := attrs.Attributes["RedrivePolicy"]; json.Unmarshal([]byte(p), &policy) != nil || policy.MaxReceiveCount != "4" {
		t.Errorf("RedrivePolicy %s, want maxReceiveCount 4", p)
	}
	ddb := dynamodb.NewFromConfig(awstest.Config(b.DynamoDB))
	ttl, err := ddb.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(env["DDB_TABLE"])})
	if err != nil || ttl.TimeToLiveDescription == nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "expires_at" {
		t.Errorf("TTL of the table: %+v, %v; want on expires_at", ttl, err)
	}
	var out logtest.Buffer
	if err := run(context.Background(), []string{"init", "extra"}, getenvOf(env), nil, &out, &out); err == nil {
		t.Error("init with an argument: got no error")
	}
}

// TestAWSSpecFlow is TestSpecFlow in the AWS mode, plus the AWS request
// metrics, on each SQS backend.
func TestAWSSpecFlow(t *testing.T) {
	awstest.ForEachSQS(t, testAWSSpecFlow)
}

func testAWSSpecFlow(t *testing.T, b awstest.Backend) {
	in := startRun(t, awsEnvOn(t, b, nil))
	token := login(t, in.api, "u123")
	var a accepted
	resp := call(t, "POST", in.api+"/orders", token, map[string]any{"user_id": "u123", "amount": 999, "items": []map[string]any{{"sku": "widget", "quantity": 2}}}, &a)
	if resp.StatusCode != 202 || a.Status != "PENDING" || a.StatusURL == "" {
		t.Fatalf("create: got %d %+v, want 202 PENDING with a status URL", resp.StatusCode, a)
	}
	doc := pollUntilTerminal(t, a.StatusURL, 20*time.Second)
	if doc.Status != "COMPLETED" || doc.OrderID != a.OrderID {
		t.Fatalf("got %+v, want order %s COMPLETED", doc, a.OrderID)
	}
	var list struct {
		Orders []struct {
			OrderID string `json:"order_id"`
		} `json:"orders"`
	}
	if resp := call(t, "GET", in.api+"/orders", token, nil, &list); resp.StatusCode != 200 || len(list.Orders) != 1 || list.Orders[0].OrderID != a.OrderID {
		t.Errorf("GET /orders: got %d %+v, want the one order", resp.StatusCode, list)
	}
	waitForMetrics(t, in.processor+"/metrics", 5*time.Second,
		`orders_processed_total{env="local",status="success"} 1`,
		`aws_requests_total{caller="orderflow",operation="ReceiveMessage",outcome="success",service="sqs"}`,
		`aws_requests_total{caller="orderflow",operation="DeleteMessageBatch",outcome="success",service="sqs"}`,
		`aws_requests_total{caller="orderflow",operation="SendMessageBatch",outcome="success",service="sqs"}`,
		`aws_requests_total{caller="orderflow",operation="TransactWriteItems",outcome="success",service="dynamodb"}`,
		`aws_requests_total{caller="orderflow",operation="UpdateItem",outcome="success",service="dynamodb"}`,
		// The simulated gateway's ledger record of the charge, counted apart.
		`aws_requests_total{caller="simulated_gateway",operation="PutItem",outcome="success",service="dynamodb"} 1`,
	)
}

// TestAWSOutcomes drives each way an order can end through the real stages
// on SQS and DynamoDB, the dead-letter path included, on each SQS backend.
func TestAWSOutcomes(t *testing.T) {
	awstest.ForEachSQS(t, testAWSOutcomes)
}

func testAWSOutcomes(t *testing.T, b awstest.Backend) {
	t.Parallel() // with the other backend's: each waits mostly on its servers
	env := awsEnvOn(t, b, map[string]string{
		"ORDERFLOW_MAX_RECEIVES":       "3", // the gateway's "03" amounts fail twice
		"ORDERFLOW_VISIBILITY_TIMEOUT": "1s",
		"ORDERFLOW_STOCK":              "widget:10,gizmo:1",
	})
	in := startRun(t, env)
	token := login(t, in.api, "ada")
	tests := []struct {
		name       string
		order      map[string]any
		status     string
		reasonCode string
	}{
		{"more than the stock is rejected", map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "gizmo", "quantity": 3}}}, "REJECTED", "out_of_stock"},
		{"an unknown sku is rejected", map[string]any{"amount": 1250, "items": []map[string]any{{"sku": "nope", "quantity": 1}}}, "REJECTED", "unknown_sku"},
		{"a declined card is rejected", map[string]any{"amount": 1002}, "REJECTED", "payment_declined"},
		{"transient gateway errors are retried until success", map[string]any{"amount": 1003}, "COMPLETED", ""},
		{"a gateway that always fails ends FAILED", map[string]any{"amount": 1004}, "FAILED", "processing_failed"},
	}
	var failed accepted
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a accepted
			if resp := call(t, "POST", in.api+"/orders", token, tt.order, &a); resp.StatusCode != 202 {
				t.Fatalf("create: got %d", resp.StatusCode)
			}
			if tt.status == "FAILED" {
				failed = a
			}
			doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second)
			if doc.Status != tt.status {
				t.Fatalf("got %s, want %s", doc.Status, tt.status)
			}
			if tt.reasonCode != "" && (doc.Failure == nil || doc.Failure.Code != tt.reasonCode || doc.Failure.Detail == "") {
				t.Fatalf("got failure %+v, want code %s with a detail", doc.Failure, tt.reasonCode)
			}
		})
	}
	if failed.OrderID == "" {
		t.Fatal("no FAILED order")
	}

	// The FAILED order's message reaches the DLQ (SQS moves it after 3
	// receives); redrive puts it back, the processor drops it as a
	// duplicate, and the order stays FAILED.
	// SQS cannot peek: listing receives, as the processor's watch does
	// every 2 s here, and a message the watch holds is hidden from a list
	// meanwhile. The receive count listed is the order queue's, and
	// listing again does not raise it.
	for i := range 4 {
		list := listDead(t, env, failed.OrderID)
		if got := deadReceiveCount(t, list, failed.OrderID); got != 3 {
			t.Errorf("dlq list %d: receive count %d, want 3 (ORDERFLOW_MAX_RECEIVES)", i+1, got)
		}
	}
	if out, _ := runCmd(t, env, "dlq", "redrive"); !strings.Contains(out, "redrove 1 message(s)") {
		t.Fatalf("dlq redrive: got %q", out)
	}
	if again := pollUntilTerminal(t, failed.StatusURL, time.Second); again.Status != "FAILED" {
		t.Fatalf("after redrive the order is %s, want it to stay FAILED", again.Status)
	}
	if out, _ := runCmd(t, env, "dlq", "purge", "--yes"); !strings.Contains(out, "purged 0 message(s)") && !strings.Contains(out, "purged 1 message(s)") {
		t.Fatalf("dlq purge: got %q", out)
	}
}

// deadReceiveCount returns the receive_count of order id's line in the
// output of dlq list.
// listDead runs dlq list until it shows the message of order id (the
// processor's watch hides it while it looks at it) and returns what it
// printed.
func listDead(t *testing.T, env map[string]string, id string) string {
	t.Helper()
	var list string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if list, _ = runCmd(t, env, "dlq", "list"); strings.Contains(list, id) {
			return list
		}
	}
	t.Fatalf("dlq list: got\n%s\nwant the message of order %s", list, id)
	return ""
}

func deadReceiveCount(t *testing.T, list, id string) int {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		var m struct {
			OrderID      string `json:"order_id"`
			ReceiveCount int    `json:"receive_count"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("dlq list line %q: %v", l, err)
		}
		if m.OrderID == id {
			return m.ReceiveCount
		}
	}
	t.Fatalf("dlq list shows no message of order %s:\n%s", id, list)
	return 0
}

// awsParts is a store and queue on an SQS backend and moto, for tests
// that drive the AWS mode's pieces directly.
type awsParts struct {
	store  *dynamostore.Store
	queue  *sqsqueue.Queue
	clock  *awstest.Clock
	sqs    *sqs.Client
	dlqURL string
}

func newAWSParts(t *testing.T, b awstest.Backend) *awsParts {
	t.Helper()
	ctx := context.Background()
	sqsClient := sqs.NewFromConfig(awstest.Config(b.SQS))
	ddb := dynamodb.NewFromConfig(awstest.Config(b.DynamoDB))
	name := awstest.Name("parts")
	qurl, dlqURL, err := sqsqueue.CreateQueues(ctx, sqsClient, sqsqueue.QueueSpec{Name: name, DLQName: name + "-dlq", VisibilityTimeout: 30 * time.Second, MaxReceives: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamostore.CreateTable(ctx, ddb, name); err != nil {
		t.Fatal(err)
	}
	clock := awstest.NewClock()
	p := &awsParts{clock: clock, sqs: sqsClient, dlqURL: dlqURL}
	p.store = dynamostore.New(ddb, name, dynamostore.Options{Now: clock.Now})
	if p.queue, err = sqsqueue.Open(ctx, sqsClient, sqsqueue.Options{QueueURL: qurl, DLQURL: dlqURL}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *awsParts) order(user string, amount int64) orderflow.Order {
	now := p.clock.Now().UTC().Truncate(time.Millisecond)
	return orderflow.Order{ID: orderflow.NewOrderID(now), UserID: user, Amount: amount, Currency: "USD",
		Status: orderflow.StatusPending, CreatedAt: now, UpdatedAt: now}
}

// TestAWSOutage takes SQS and DynamoDB away under a running program: the
// api answers 503 problem+json with Retry-After within the request
// timeout, /ready turns 503, and when the service is back the processor
// finishes every accepted order by itself.
func TestAWSOutage(t *testing.T) {
	proxy := awstest.NewProxy(t, awstest.Endpoint(t))
	env := awsEnv(t, proxy.URL(), map[string]string{
		"ORDERFLOW_REQUEST_TIMEOUT":    "4s",
		"ORDERFLOW_AWS_CALL_TIMEOUT":   "1s",
		"ORDERFLOW_VISIBILITY_TIMEOUT": "2s",
		"ORDERFLOW_PAYMENT_LATENCY":    "300ms",
		"ORDERFLOW_MAX_RECEIVES":       "20",
	})
	in := startRun(t, env)
	token := login(t, in.api, "olive")
	var before []accepted
	for i := range 5 {
		var a accepted
		if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1000 + 100*i}, &a); resp.StatusCode != 202 {
			t.Fatalf("create before the outage: got %d", resp.StatusCode)
		}
		before = append(before, a)
	}

	proxy.Down()
	start := time.Now()
	req, _ := http.NewRequest("POST", in.api+"/orders", strings.NewReader(`{"amount": 5000}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("POST /orders in an outage: got %d %q Retry-After %q: %s; want 503 problem+json with Retry-After",
			resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("POST /orders in an outage took %v, want an answer within the 4s request timeout", took)
	}
	waitStatus(t, in.api+"/ready", 503)
	waitStatus(t, in.processor+"/ready", 503)

	// The outage lasts until the processor has met it and backed off.
	for deadline := time.Now().Add(30 * time.Second); len(in.out.Messages("receive failed; pausing")) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the processor did not report a failed receive within 30s of the outage\n%s", in.out)
		}
	}
	proxy.Up()
	waitStatus(t, in.api+"/ready", 200)
	for _, a := range before {
		if doc := pollUntilTerminal(t, a.StatusURL, 60*time.Second); doc.Status != "COMPLETED" {
			t.Errorf("order %s accepted before the outage ended %s, want COMPLETED", a.OrderID, doc.Status)
		}
	}
	var a accepted
	if resp := call(t, "POST", in.api+"/orders", token, map[string]any{"amount": 1000}, &a); resp.StatusCode != 202 {
		t.Fatalf("create after the outage: got %d", resp.StatusCode)
	}
	if doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second); doc.Status != "COMPLETED" {
		t.Errorf("order after the outage ended %s, want COMPLETED", doc.Status)
	}
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		resp, err := testClient(t).Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got = resp.StatusCode; got == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: got %d, want %d within 20s", url, got, want)
}

// placeRetrying places an order as a client library would: a 409 (the
// first request with the key is in flight, e.g. in a process that was just
// killed) or a 503 is retried after a pause, with the same key.
func (c *crashClient) placeRetrying(t *testing.T, key string, amount int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.place(key, amount)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("place %s: still failing after 30s: %v", key, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAWSCrashKill9 is TestCrashKill9 in the AWS mode: SIGKILL while
// orders are accepted and while they are processed; every 202 ends
// terminal, a retried key is not a second order, no order is charged
// twice, stock moves once per completed order; on each SQS backend.
func TestAWSCrashKill9(t *testing.T) {
	awstest.ForEachSQS(t, testAWSCrashKill9)
}

func testAWSCrashKill9(t *testing.T, b awstest.Backend) {
	t.Parallel() // with the other backend's: each waits mostly on its servers
	settings := crashSettings()
	settings["ORDERFLOW_TAKEOVER_AFTER"] = "1s"
	settings["ORDERFLOW_SWEEP_AFTER"] = "5s"
	env := awsEnvOn(t, b, settings)
	logPath := t.TempDir() + "/child.log"
	api := "http://" + env["ORDERFLOW_API_ADDR"]

	c := startChild(t, env, logPath)
	cl := newCrashClient(t, api)
	loadUntilKilled(t, c, cl, 60)
	t.Logf("first kill: %d accepted, %d to retry (%d of them answered 503 or 409)", len(cl.ok), len(cl.unknown), cl.asked)

	c = startChild(t, env, logPath)
	cl.mu.Lock()
	retry := make(map[string]int, len(cl.unknown))
	for k, v := range cl.unknown {
		retry[k] = v
	}
	cl.mu.Unlock()
	for key, amount := range retry {
		cl.placeRetrying(t, key, amount)
	}
	c.waitProcessing(t) // the processor is into the backlog
	c.kill9(t)
	c = startChild(t, env, logPath)

	final := cl.waitTerminal(t)
	c.stop(t)

	st := dynamostore.New(dynamodb.NewFromConfig(awstest.Config(ddbEndpoint(env))), env["DDB_TABLE"], dynamostore.Options{})
	checkBooks(t, st, cl, final, crashStock)
}
