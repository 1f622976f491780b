package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
)

// shedBound is the ORDERFLOW_MAX_BACKLOG of the shedding tests.
const shedBound = 20

// shedSettings are the crash tests' settings with a small backlog bound,
// and the api's warnings logged (the line that says it sheds).
func shedSettings() map[string]string {
	s := crashSettings()
	s["ORDERFLOW_MAX_BACKLOG"] = strconv.Itoa(shedBound)
	s["ORDERFLOW_LOG_LEVEL"] = "warn"
	return s
}

// TestSplitModeShedsLoadAndLosesNothing: an `orderflow api` with no
// processor behind it accepts orders up to ORDERFLOW_MAX_BACKLOG and then
// answers 503 overloaded with Retry-After, stays ready, counts and logs
// it; once a processor drains the backlog the refused orders are accepted
// on retry, and every accepted order ends terminal, charged once.
func TestSplitModeShedsLoadAndLosesNothing(t *testing.T) {
	env := testEnv(t, shedSettings())
	testShedding(t, env, func() books { return sqliteBooks(t, env) })
}

// TestAWSShedsLoadAndLosesNothing is the same in the AWS mode, where the
// backlog is the SQS queue's approximate counts.
func TestAWSShedsLoadAndLosesNothing(t *testing.T) {
	env := awsEnv(t, awstest.Endpoint(t), shedSettings())
	testShedding(t, env, func() books {
		return dynamostore.New(dynamodb.NewFromConfig(awstest.Config(ddbEndpoint(env))), env["DDB_TABLE"], dynamostore.Options{})
	})
}

func testShedding(t *testing.T, env map[string]string, open func() books) {
	logs := t.TempDir()
	api := startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	base := "http://" + env["ORDERFLOW_API_ADDR"]
	cl := newCrashClient(t, base)

	// No processor yet: every order accepted stays in the backlog, and the
	// api counts the ones it accepted on top of the queue's last count, so
	// no more than the bound is accepted however fast the orders come. An
	// order whose write returns while a count runs may be in that count and
	// is added on top as well until the next count (the estimate errs high,
	// never low: see orderflow.Backlog), so a refusal below the bound waits
	// for the api's estimate to come back to the orders accepted (a count
	// with no write beside it) before the next order; at the end exactly
	// the bound is accepted.
	const offered = shedBound + 10
	for n := range offered {
		key := fmt.Sprintf("s-%d", n)
		refused := cl.asked
		cl.place(key, 1000+100*n) // a refusal is counted in cl.asked, anything else in cl.other
		if cl.asked > refused && len(cl.ok) < shedBound {
			waitForMetrics(t, base+"/metrics", 10*time.Second, fmt.Sprintf("\norder_backlog %d\n", len(cl.ok)))
		}
	}
	if len(cl.ok) != shedBound || len(cl.unknown) != offered-shedBound || cl.asked < offered-shedBound || len(cl.other) > 0 {
		t.Fatalf("%d accepted, %d refused with 503 or 409, other answers %v; want %d accepted and the rest refused with 503",
			len(cl.ok), cl.asked, cl.other, shedBound)
	}
	checkOverloadedAnswer(t, cl, base)
	if resp, err := cl.http.Get(base + "/ready"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready while shedding: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	waitForMetrics(t, base+"/metrics", 10*time.Second,
		fmt.Sprintf("orders_shed_total %d", cl.asked+1),
		fmt.Sprintf("order_backlog_max %d", shedBound))
	waitLog(t, api.log, 10*time.Second, map[string]any{"msg": "shedding load: the backlog has reached ORDERFLOW_MAX_BACKLOG; POST /orders answers 503 overloaded"})

	// A processor drains the backlog; the refused orders, retried with
	// their keys as a client would after Retry-After, are accepted.
	proc := startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	retry := make(map[string]int, len(cl.unknown))
	for k, v := range cl.unknown {
		retry[k] = v
	}
	for key, amount := range retry {
		cl.placeRetrying(t, key, amount)
	}
	if len(cl.ok) != offered {
		t.Fatalf("%d orders accepted after the retries, want %d", len(cl.ok), offered)
	}
	final := cl.waitTerminal(t)
	api.stop(t)
	proc.stop(t)
	checkBooks(t, open(), cl, final, crashStock)
}

// checkOverloadedAnswer places one more order and checks the answer of a
// shedding api: 503, Retry-After, problem type overloaded.
func checkOverloadedAnswer(t *testing.T, cl *crashClient, base string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"amount": 1000, "items": []map[string]any{{"sku": "widget", "quantity": 1}}})
	req, _ := http.NewRequest("POST", base+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cl.token)
	resp, err := cl.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("503 body: %v", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || p.Status != 503 || !bytes.HasSuffix([]byte(p.Type), []byte("/overloaded")) {
		t.Fatalf("answer while shedding: %d Retry-After %q %s %+v; want 503 with Retry-After, problem overloaded",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), p)
	}
}
