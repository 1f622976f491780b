package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
)

// globalTable stands for a DynamoDB global table on moto, which keeps
// regions apart and has no Global Tables replication: DynamoDB requests
// signed for any region reach the table of home (moto reads the region from
// the signature's scope and checks no signature). One table that every
// region reads and writes, with no replication lag: the lag and last-writer-
// wins are what docs/multi-region.md analyses, and what this cannot show.
func globalTable(t *testing.T, endpoint, home string) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		auth := r.In.Header.Get("Authorization")
		if i := strings.Index(auth, "/dynamodb/aws4_request"); i > 0 {
			scope := auth[:i]
			if j := strings.LastIndex(scope, "/"); j > 0 {
				r.Out.Header.Set("Authorization", scope[:j+1]+home+auth[i:])
			}
		}
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMultiRegionFailover runs two region stacks (us-east-1 and
// eu-west-1, each its own queues on region-scoped moto, one global table)
// and takes region A down under a backlog: region B keeps accepting, A's
// status URLs and idempotency keys work in B, an operator declares A down
// (ORDERFLOW_TAKEOVER_REGIONS) and B's processor takes over A's PENDING
// orders; A comes back and ends the orders it had in work, and drops the
// messages of those taken over. Every order ends terminal, charged once,
// its stock taken once.
func TestMultiRegionFailover(t *testing.T) {
	t.Parallel()
	moto := awstest.Endpoint(t)
	const east, west = "us-east-1", "eu-west-1"
	settings := crashSettings()
	settings["ORDERFLOW_PAYMENT_LATENCY"] = "300ms" // A builds a backlog before it goes down
	settings["ORDERFLOW_CONCURRENCY"] = "2"
	envA := awsEnv(t, moto, settings)

	table := envA["DDB_TABLE"]
	settingsB := crashSettings()
	settingsB["ORDERFLOW_TABLE_NAME"] = table
	settingsB["AWS_REGION"] = west
	settingsB["ORDERFLOW_SWEEP_AFTER"] = "1s"
	envB := awsEnvOn(t, awstest.Backend{Name: "moto", SQS: moto, DynamoDB: globalTable(t, moto, east)}, settingsB)
	if envB["DDB_TABLE"] != table || !strings.Contains(envB["SQS_QUEUE_URL"], west) && envB["SQS_QUEUE_URL"] == envA["SQS_QUEUE_URL"] {
		t.Fatalf("region B: queue %s, table %s; want its own queue and table %s", envB["SQS_QUEUE_URL"], envB["DDB_TABLE"], table)
	}
	logs := t.TempDir()
	apiA, apiB := "http://"+envA["ORDERFLOW_API_ADDR"], "http://"+envB["ORDERFLOW_API_ADDR"]

	// Region A accepts a backlog, and goes down with it.
	a := startChild(t, envA, filepath.Join(logs, "a.log"))
	cl := newUserClient(t, "mr", apiA)
	for n := range 30 {
		if err := cl.place(fmt.Sprintf("a-%d", n), 1000+100*n); err != nil {
			t.Fatal(err)
		}
	}
	a.kill9(t)
	fromA := map[string]accepted{}
	for k, v := range cl.ok {
		fromA[k] = v
	}

	// Region B keeps accepting, and answers for A's orders.
	envB["ORDERFLOW_TAKEOVER_REGIONS"] = ""
	b := startChild(t, envB, filepath.Join(logs, "b.log"))
	clB := newUserClient(t, "mr", apiB)
	for n := range 10 {
		if err := clB.place(fmt.Sprintf("b-%d", n), 1000+100*n); err != nil {
			t.Fatalf("region B while A is down: %v", err)
		}
	}
	// Each order's id carries the region that accepted it.
	for key, acc := range cl.ok {
		if id := orderflow.OrderID(acc.OrderID); !id.AcceptedIn(east) || id.AcceptedIn(west) {
			t.Errorf("order %s (%s) accepted in %s: its id lacks the tag %s of %s", id, key, east, orderflow.RegionTag(east), east)
		}
	}
	for key, acc := range clB.ok {
		if id := orderflow.OrderID(acc.OrderID); !id.AcceptedIn(west) || id.AcceptedIn(east) {
			t.Errorf("order %s (%s) accepted in %s: its id lacks the tag %s of %s", id, key, west, orderflow.RegionTag(west), west)
		}
	}
	inB := func(statusURL string) string { return strings.Replace(statusURL, apiA, apiB, 1) }
	for key, acc := range fromA {
		doc := pollStatus(t, inB(acc.StatusURL))
		if doc.OrderID != acc.OrderID || doc.Region != east {
			t.Errorf("A's status URL of %s in B: order %s in region %q, want %s in %s", key, doc.OrderID, doc.Region, acc.OrderID, east)
		}
		break
	}
	// A client's retry that lands in B: the key's order, not a second one.
	status, again, _, err := clB.post("a-0", 1000)
	if err != nil || status != http.StatusAccepted || again.OrderID != fromA["a-0"].OrderID {
		t.Errorf("retry of A's key a-0 in B: %d %v %v, want 202 with order %s", status, again.OrderID, err, fromA["a-0"].OrderID)
	}
	b.stop(t)

	// The operator declares A down: B's processor takes its PENDING
	// orders over and ends them.
	envB["ORDERFLOW_TAKEOVER_REGIONS"] = east
	b = startChild(t, envB, filepath.Join(logs, "b.log"))
	var inWorkInA []string
	for key, acc := range fromA {
		doc := pollUntil(t, inB(acc.StatusURL), 30*time.Second, func(d statusDoc) bool {
			return terminal(d) || d.Status == "PROCESSING" && d.Region == east
		})
		if !terminal(doc) {
			inWorkInA = append(inWorkInA, key) // A had started it: A's to end
		}
	}

	// A returns: it ends what it had in work and drops the rest.
	a = startChild(t, envA, filepath.Join(logs, "a.log"))
	for k, v := range clB.ok {
		cl.ok[k] = v
	}
	final := map[string]statusDoc{}
	takenOver := 0
	for key, acc := range cl.ok {
		u := acc.StatusURL
		if strings.HasPrefix(key, "a-") {
			u = inB(u)
		}
		final[key] = pollUntilTerminal(t, u, 60*time.Second)
		if strings.HasPrefix(key, "a-") && final[key].Region == west {
			takenOver++
		}
		if strings.HasPrefix(key, "b-") && final[key].Region != west {
			t.Errorf("B's order %s ended in region %q", key, final[key].Region)
		}
	}
	a.stop(t)
	b.stop(t)
	if takenOver == 0 {
		t.Error("no order of A was taken over by B")
	}
	for _, key := range inWorkInA {
		if final[key].Region != east {
			t.Errorf("order %s, in work in A when it went down, ended in %q: want A's", key, final[key].Region)
		}
	}
	st := dynamostore.New(dynamodb.NewFromConfig(awstest.Config(moto)), table, dynamostore.Options{})
	checkBooks(t, st, cl, final, crashStock)
	t.Logf("region A down with %d orders accepted: %d taken over by B, %d ended by A on its return (%d in work when it went down); B accepted %d meanwhile",
		len(fromA), takenOver, len(fromA)-takenOver, len(inWorkInA), len(clB.ok))
}
