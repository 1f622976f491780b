package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/dynamostore"
	"github.com/orderflow/orderflow/otlptest"
)

// scaleLimit is the per-user rate limit of the scale-out tests: the spec's
// 100 orders per minute.
const scaleLimit = 100

// scaleSettings are the crash tests' settings with the spec's rate limit,
// and payments slow enough that a backlog is still in work when a
// processor is killed.
func scaleSettings() map[string]string {
	s := crashSettings()
	s["ORDERFLOW_RATE_LIMIT"] = strconv.Itoa(scaleLimit)
	s["ORDERFLOW_PAYMENT_LATENCY"] = "50ms"
	s["ORDERFLOW_CONCURRENCY"] = "4"
	return s
}

// cluster is one system run as it is scaled out: two api and two
// processor processes on one store and queue.
type cluster struct {
	apis, procs []*child
}

// startCluster starts two `orderflow api` and two `orderflow processor`
// processes with env, each on its own address, and waits until all are
// ready.
func startCluster(t *testing.T, env map[string]string) *cluster {
	t.Helper()
	logs := t.TempDir()
	c := &cluster{}
	for i := range 2 {
		e := maps.Clone(env)
		e["ORDERFLOW_API_ADDR"] = freeAddr(t)
		registerPorts(e)
		c.apis = append(c.apis, startChildCommand(t, e, filepath.Join(logs, fmt.Sprintf("api%d.log", i)), "api"))
	}
	for i := range 2 {
		e := maps.Clone(env)
		e["ORDERFLOW_PROCESSOR_ADDR"] = freeAddr(t)
		e["ORDERFLOW_LOG_LEVEL"] = "info" // a line per transition and per message deleted, with its trace_id (see checkOneTracePerOrder)
		registerPorts(e)
		c.procs = append(c.procs, startChildCommand(t, e, filepath.Join(logs, fmt.Sprintf("processor%d.log", i)), "processor"))
	}
	return c
}

// apiURLs returns the base URLs of the api processes.
func (c *cluster) apiURLs() []string {
	var urls []string
	for _, a := range c.apis {
		urls = append(urls, "http://"+a.env["ORDERFLOW_API_ADDR"])
	}
	return urls
}

// stop stops every process still running with SIGTERM.
func (c *cluster) stop(t *testing.T) {
	t.Helper()
	for _, p := range append(c.apis, c.procs...) {
		select {
		case <-p.done:
		default:
			p.stop(t)
		}
	}
}

// TestSplitModeScaleOut: two api and two processor processes on one
// SQLite file; see scaleOut.
func TestSplitModeScaleOut(t *testing.T) {
	rcv := otlptest.Start(t)
	env := tracedEnv(testEnv(t, scaleSettings()), rcv)
	c := startCluster(t, env)
	crash, limited := scaleOut(t, c)
	checkScaledBooks(t, c, sqliteBooks(t, env), crash, limited)
	checkOneTracePerOrder(t, c, rcv, crash, limited)
}

// TestAWSScaleOut: two api and two processor processes on one SQS queue
// (ElasticMQ) and DynamoDB table (moto); see scaleOut.
func TestAWSScaleOut(t *testing.T) {
	settings := scaleSettings()
	settings["ORDERFLOW_TAKEOVER_AFTER"] = "1s"
	settings["ORDERFLOW_SWEEP_AFTER"] = "5s"
	b := awstest.Backend{Name: "elasticmq", SQS: awstest.ElasticMQ(t), DynamoDB: awstest.Endpoint(t)}
	rcv := otlptest.Start(t)
	env := tracedEnv(awsEnvOn(t, b, settings), rcv)
	c := startCluster(t, env)
	crash, limited := scaleOut(t, c)
	st := dynamostore.New(dynamodb.NewFromConfig(awstest.Config(b.DynamoDB)), env["DDB_TABLE"], dynamostore.Options{})
	checkScaledBooks(t, c, st, crash, limited)
	checkOneTracePerOrder(t, c, rcv, crash, limited)
}

// scaleOut runs a bounded load over both api processes of c and kills one
// processor with SIGKILL while the backlog is in work; then one user sends
// half again as many orders as the limit allows, to both api processes in
// turn, and the limit must hold across them. It returns the two clients,
// their accepted orders not yet checked.
func scaleOut(t *testing.T, c *cluster) (crash, limited *crashClient) {
	t.Helper()
	crash = newCrashClient(t, c.apiURLs()...)
	stop := crash.load()
	ok := crash.waitAccepted(scaleLimit/2, 30*time.Second)
	stop() // at most 8 more than scaleLimit/2: the user stays under the limit
	if !ok {
		t.Fatalf("fewer than %d orders accepted within 30s", scaleLimit/2)
	}
	c.procs[0].waitProcessing(t)
	c.procs[0].kill9(t) // the other processor takes over its orders once their visibility runs out

	limited = newUserClient(t, "limited", c.apiURLs()...)
	attempts := scaleLimit * 3 / 2
	start := time.Now()
	denied := limited.burst(t, attempts)
	// GCRA: a new user may send limit orders at once, and one more each
	// time 1/limit of the minute has passed.
	refill := int(time.Since(start)/(time.Minute/scaleLimit)) + 1
	if scaleLimit+refill >= attempts {
		t.Fatalf("the burst took %s: so much refilled that a limit per process would pass too", time.Since(start))
	}
	if got := len(limited.ok); got < scaleLimit || got > scaleLimit+refill {
		t.Errorf("one user got %d of %d orders accepted across 2 api processes, want %d to %d (the limit of %d per minute, and what refilled in %s)",
			got, attempts, scaleLimit, scaleLimit+refill, scaleLimit, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("rate limit across 2 api processes: %d accepted, %d denied", len(limited.ok), denied)
	return crash, limited
}

// checkScaledBooks waits until every order of crash and limited is
// terminal, stops c, and checks the books in st: one order per key, each
// charged once if completed and never otherwise, stock conserved.
func checkScaledBooks(t *testing.T, c *cluster, st books, crash, limited *crashClient) {
	t.Helper()
	finalCrash, finalLimited := crash.waitTerminal(t), limited.waitTerminal(t)
	c.stop(t)
	completed := checkOrders(t, st, crash, finalCrash) + checkOrders(t, st, limited, finalLimited)
	checkStock(t, st, crashStock, completed)
	t.Logf("%d orders accepted over 2 api processes, %d completed by 2 processors (one killed), each charged and stocked once",
		len(finalCrash)+len(finalLimited), completed)
}

// burst sends n orders from 10 clients at once (so that little of the
// limit refills meanwhile) and returns how many were denied with 429; the
// accepted ones are recorded in c.ok. Any other answer fails the test.
func (c *crashClient) burst(t *testing.T, n int) (denied int) {
	t.Helper()
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for i := range next {
				key := fmt.Sprintf("%s-%d", c.user, i)
				status, a, h, err := c.post(key, 1000+i)
				c.mu.Lock()
				switch {
				case err != nil:
					t.Errorf("order %d: %v", i, err)
				case status == http.StatusAccepted:
					c.ok[key] = a
				case status == http.StatusTooManyRequests:
					denied++
					if h.Get("Retry-After") == "" || h.Get("RateLimit") == "" {
						t.Errorf("a 429 without Retry-After or RateLimit: %v", h)
					}
				default:
					t.Errorf("order %d: status %d", i, status)
				}
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return denied
}

// checkOneTracePerOrder checks, with every process stopped (their spans
// flushed), that each accepted order of the clients is one trace across
// the processes: the trace_id of every line the processors logged about it
// and of every "process order" span of it is the same, and that trace
// holds the POST /orders server span of an api process, the parent of each
// "process order" span. The log lines are written as they happen, so they
// also cover the orders that the killed processor handled but whose spans
// it had not yet exported: a transition, or for an order its owner
// cancelled while PENDING (no transition of the processor's), the line
// that deletes its message.
func checkOneTracePerOrder(t *testing.T, c *cluster, rcv *otlptest.Receiver, clients ...*crashClient) {
	t.Helper()
	spans := rcv.Spans()
	servers := map[string]otlptest.Span{}  // the api's POST /orders spans by span id
	inTrace := map[string]bool{}           // the traces holding one
	traces := map[string]map[string]bool{} // order id → trace ids seen
	saw := func(order, trace string) {
		if traces[order] == nil {
			traces[order] = map[string]bool{}
		}
		traces[order][trace] = true
	}
	var processing []otlptest.Span
	for _, s := range spans {
		switch {
		case s.Service == "orderflow-api" && s.Name == "POST /orders":
			servers[s.SpanID], inTrace[s.TraceID] = s, true
		case s.Service == "orderflow-processor" && s.Name == "process order":
			processing = append(processing, s)
			saw(s.Attributes["orderflow.order_id"], s.TraceID)
		}
	}
	for _, p := range c.procs {
		for _, l := range orderLines(t, p.log) {
			saw(l.OrderID, l.TraceID)
		}
	}
	for _, p := range processing {
		if server, ok := servers[p.ParentSpanID]; !ok || server.TraceID != p.TraceID {
			t.Errorf("%s (order %s) is not the child of an api's POST /orders span", p, p.Attributes["orderflow.order_id"])
		}
	}
	orders := 0
	for _, cl := range clients {
		for _, a := range cl.ok {
			orders++
			seen := traces[a.OrderID]
			for trace := range seen {
				if len(seen) != 1 || !inTrace[trace] {
					t.Errorf("order %s: traces %v, want one, holding the api's POST /orders span", a.OrderID, seen)
					break
				}
			}
			if len(seen) == 0 {
				t.Errorf("order %s: no processor logged a line about it and no process order span", a.OrderID)
			}
		}
	}
	t.Logf("%d orders, each one trace from an api process to a processor (%d spans received)", orders, len(spans))
}

// orderLine is what checkOneTracePerOrder reads of a processor's log
// line about an order.
type orderLine struct {
	OrderID string `json:"order_id"`
	TraceID string `json:"trace_id"`
}

// orderLines returns the lines of the log at path that name an order and
// a trace.
func orderLines(t *testing.T, path string) []orderLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []orderLine
	for line := range bytes.Lines(b) {
		var l orderLine
		if json.Unmarshal(line, &l) == nil && l.OrderID != "" && l.TraceID != "" {
			out = append(out, l)
		}
	}
	return out
}
