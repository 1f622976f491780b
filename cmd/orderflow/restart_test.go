package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/sqlite"
)

// The tests in this file kill the program with SIGKILL in the middle of an
// order's attempts and check that the restarted program ends the order as
// if nothing had happened, and tells the operator about it (metrics, logs).

// placeWithRequestID places one order for user with the given X-Request-ID.
func placeWithRequestID(t *testing.T, api, token, requestID string, amount int) accepted {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"amount": amount})
	req, _ := http.NewRequest("POST", api+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Request-ID", requestID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a accepted
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: got %d %+v (%v), want 202", resp.StatusCode, a, err)
	}
	return a
}

// logRecords returns the JSON log records in the file at path.
func logRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// matches reports whether rec has every attribute of want.
func matches(rec map[string]any, want map[string]any) bool {
	for k, v := range want {
		if rec[k] != v {
			return false
		}
	}
	return true
}

// waitLog waits until the log file at path has a record with every
// attribute of want, and returns it.
func waitLog(t *testing.T, path string, within time.Duration, want map[string]any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, rec := range logRecords(t, path) {
			if matches(rec, want) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("no log record with %v within %s in %s:\n%s", want, within, path, b)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// killedLastAttemptSettings: one receive per message, so that the first
// attempt is the last, and a payment that takes long enough to be killed
// in, yet whose look-up (which takes the same latency) fits in the stage
// timeout, for the dead-letter watch to ask it.
func killedLastAttemptSettings() map[string]string {
	return map[string]string{
		"ORDERFLOW_MAX_RECEIVES":       "1",
		"ORDERFLOW_VISIBILITY_TIMEOUT": "1s",
		"ORDERFLOW_PAYMENT_LATENCY":    "5s",
		"ORDERFLOW_LOG_LEVEL":          "info",
		"ORDERFLOW_DLQ_WATCH_INTERVAL": "1s",
	}
}

// TestKilledLastAttemptIsCountedAndLogged: an order whose processor is
// killed with SIGKILL during its last attempt is ended FAILED
// dead_lettered by the dead-letter path after the restart, and the
// restarted processor counts it in orders_processed_total{status="error"}
// (which the error alert watches) and logs its "order transition" line
// with request_id, order_id and user_id.
func TestKilledLastAttemptIsCountedAndLogged(t *testing.T) {
	testKilledLastAttempt(t, testEnv(t, killedLastAttemptSettings()))
}

// TestAWSKilledLastAttemptIsCountedAndLogged is the same in the AWS mode,
// where SQS dead-letters the message and the processor's dead-letter watch
// ends the order.
func TestAWSKilledLastAttemptIsCountedAndLogged(t *testing.T) {
	testKilledLastAttempt(t, awsEnv(t, awstest.Endpoint(t), killedLastAttemptSettings()))
}

func testKilledLastAttempt(t *testing.T, env map[string]string) {
	logs := t.TempDir()
	first, second := filepath.Join(logs, "first.log"), filepath.Join(logs, "second.log")
	api := "http://" + env["ORDERFLOW_API_ADDR"]

	c := startChild(t, env, first)
	token := login(t, api, "dora")
	const requestID = "req-killed-last-attempt"
	a := placeWithRequestID(t, api, token, requestID, 1250)
	waitLog(t, first, 20*time.Second, map[string]any{"msg": "order transition", "order_id": a.OrderID, "to": "PROCESSING"})
	c.kill9(t) // in the payment's 5 s of latency

	c = startChild(t, env, second)
	defer c.stop(t)
	doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second)
	if doc.Status != "FAILED" || doc.Failure == nil || doc.Failure.Code != orderflow.ReasonDeadLettered {
		t.Fatalf("got %+v, want FAILED %s", doc, orderflow.ReasonDeadLettered)
	}
	waitForMetrics(t, "http://"+env["ORDERFLOW_PROCESSOR_ADDR"]+"/metrics", 10*time.Second,
		`orders_processed_total{env="local",status="error"} 1`)
	rec := waitLog(t, second, 10*time.Second, map[string]any{"msg": "order transition", "order_id": a.OrderID, "to": "FAILED"})
	want := map[string]any{
		"from": "PROCESSING", "reason": orderflow.ReasonDeadLettered,
		"request_id": requestID, "user_id": "dora", "level": "INFO",
	}
	if !matches(rec, want) {
		t.Errorf("transition line %v, want the attributes %v", rec, want)
	}
}

// transientSettings: the gateway's "03" amounts fail on their first two
// attempts, and the third receive is the last.
func transientSettings() map[string]string {
	return map[string]string{
		"ORDERFLOW_MAX_RECEIVES":       "3",
		"ORDERFLOW_VISIBILITY_TIMEOUT": "1s",
		"ORDERFLOW_LOG_LEVEL":          "info",
	}
}

// TestKilledMidSequenceStillCompletes: an amount that fails twice and then
// succeeds is killed with SIGKILL after its second failure; the restarted
// gateway continues the same sequence (its attempt counts are kept where
// its ledger is), so the third and last attempt succeeds and the order is
// COMPLETED and charged once.
func TestKilledMidSequenceStillCompletes(t *testing.T) {
	env := testEnv(t, transientSettings())
	testKilledMidSequence(t, env, func() books {
		db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestAWSKilledMidSequenceStillCompletes is the same in the AWS mode, where
// the gateway's ledger is in DynamoDB.
func TestAWSKilledMidSequenceStillCompletes(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), transientSettings())
	testKilledMidSequence(t, env, func() books {
		return dynamostore.New(dynamodb.NewFromConfig(awstest.Config(env["AWS_ENDPOINT_URL"])), env["DDB_TABLE"], dynamostore.Options{})
	})
}

func testKilledMidSequence(t *testing.T, env map[string]string, open func() books) {
	logs := t.TempDir()
	api := "http://" + env["ORDERFLOW_API_ADDR"]
	c := startChild(t, env, filepath.Join(logs, "first.log"))
	token := login(t, api, "tess")
	a := placeWithRequestID(t, api, token, "req-killed-mid-sequence", 1003)
	waitLog(t, filepath.Join(logs, "first.log"), 30*time.Second, map[string]any{
		"msg": "transient error; will retry", "order_id": a.OrderID, "step": "payment", "receive_count": float64(2),
	})
	c.kill9(t)

	c = startChild(t, env, filepath.Join(logs, "second.log"))
	doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second)
	c.stop(t)
	if doc.Status != "COMPLETED" {
		t.Fatalf("order ended %s (%+v), want COMPLETED: the gateway's third attempt succeeds", doc.Status, doc.Failure)
	}
	charges, err := open().Charges(context.Background(), orderflow.OrderID(a.OrderID))
	if err != nil {
		t.Fatal(err)
	}
	if len(charges) != 1 {
		t.Errorf("order has %d charges, want 1", len(charges))
	}
}
