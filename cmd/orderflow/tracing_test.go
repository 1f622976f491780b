package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/otlptest"
)

// A client's trace, continued: the api's server span, the processor's
// spans and the store's writes of one order are one trace, whose id is the
// client's. The spans reach a real OTLP/HTTP receiver, as a collector's.
const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientTraceParent = "00-" + clientTraceID + "-00f067aa0ba902b7-01"
)

// tracedEnv points env's exporter at rcv, exporting each span promptly.
func tracedEnv(env map[string]string, rcv *otlptest.Receiver) map[string]string {
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rcv.URL
	env["OTEL_BSP_SCHEDULE_DELAY"] = "20" // ms; the batch processor's default is 5 s
	return env
}

// placeTraced places an order with the client's traceparent and waits
// until it is final; it returns the order id.
func placeTraced(t *testing.T, api string) string {
	t.Helper()
	token := login(t, api, "tracy")
	req, err := http.NewRequest("POST", api+"/orders", strings.NewReader(`{"amount":1999,"items":[{"sku":"widget","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("traceparent", clientTraceParent)
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a accepted
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 202 {
		t.Fatalf("create: got %d %+v %v, want 202", resp.StatusCode, a, err)
	}
	if doc := pollUntilTerminal(t, a.StatusURL, 30*time.Second); doc.Status != "COMPLETED" {
		t.Fatalf("order ended %+v, want COMPLETED", doc)
	}
	return a.OrderID
}

// wantTrace is what one order's trace must hold: the span names by
// service, and the parent of the processing and the stages.
type wantTrace struct {
	api, processor string   // service names
	apiSpans       []string // besides the server span POST /orders
	processorSpans []string // besides "process order" and the stages
}

// assertOneTrace waits for the client's trace to hold every span of want
// and checks its shape: the processing is the child of the api's server
// span (the traceparent of the message), each stage the processing's child.
func assertOneTrace(t *testing.T, rcv *otlptest.Receiver, want wantTrace) {
	t.Helper()
	stages := []string{"stage inventory", "stage fraud", "stage payment"}
	type key struct{ service, name string }
	var wanted []key
	wanted = append(wanted, key{want.api, "POST /orders"})
	for _, n := range want.apiSpans {
		wanted = append(wanted, key{want.api, n})
	}
	for _, n := range append(append([]string{"process order", "transition"}, stages...), want.processorSpans...) {
		wanted = append(wanted, key{want.processor, n})
	}
	var spans []otlptest.Span
	rcv.WaitFor(t, 30*time.Second, "complete trace "+clientTraceID, func([]otlptest.Span) bool {
		spans = rcv.Trace(clientTraceID)
		have := map[key]bool{}
		for _, s := range spans {
			have[key{s.Service, s.Name}] = true
		}
		for _, k := range wanted {
			if !have[k] {
				return false
			}
		}
		return true
	})
	byName := map[string]otlptest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	server, process := byName["POST /orders"], byName["process order"]
	if server.ParentSpanID != clientTraceParent[36:52] {
		t.Errorf("the api's server span has parent %q, want the client's span %s", server.ParentSpanID, clientTraceParent[36:52])
	}
	if process.ParentSpanID != server.SpanID {
		t.Errorf("process order has parent %q, want the api's server span %s\n%s", process.ParentSpanID, server.SpanID, otlptest.Dump(spans))
	}
	for _, n := range stages {
		if s := byName[n]; s.ParentSpanID != process.SpanID {
			t.Errorf("%s has parent %q, want process order %s", n, s.ParentSpanID, process.SpanID)
		}
	}
}

// TestOneTraceEmbedded: orderflow serve (one process, one SQLite file).
func TestOneTraceEmbedded(t *testing.T) {
	t.Parallel()
	rcv := otlptest.Start(t)
	env := tracedEnv(testEnv(t, nil), rcv)
	c := startChildCommand(t, env, filepath.Join(t.TempDir(), "serve.log"), "serve")
	placeTraced(t, "http://"+env["ORDERFLOW_API_ADDR"])
	assertOneTrace(t, rcv, wantTrace{
		api: "orderflow", processor: "orderflow",
		apiSpans: []string{"sqlite write", "sqlite transaction"},
	})
	c.stop(t)
}

// TestOneTraceSplit: orderflow api and orderflow processor, two processes
// on one file; the trace crosses from one to the other in the queue row.
func TestOneTraceSplit(t *testing.T) {
	t.Parallel()
	rcv := otlptest.Start(t)
	env := tracedEnv(testEnv(t, nil), rcv)
	dir := t.TempDir()
	api := startChildCommand(t, env, filepath.Join(dir, "api.log"), "api")
	proc := startChildCommand(t, env, filepath.Join(dir, "processor.log"), "processor")
	placeTraced(t, "http://"+env["ORDERFLOW_API_ADDR"])
	assertOneTrace(t, rcv, wantTrace{
		api: "orderflow-api", processor: "orderflow-processor",
		apiSpans:       []string{"sqlite write", "sqlite transaction"},
		processorSpans: []string{"sqlite write"},
	})
	api.stop(t)
	proc.stop(t)
}

// TestOneTraceAWS: the AWS mode on moto, api and processor in two
// processes; the trace crosses in the SQS message's traceparent, and the
// SQS and DynamoDB calls are client spans of the trace (otelaws).
func TestOneTraceAWS(t *testing.T) {
	rcv := otlptest.Start(t)
	env := tracedEnv(awsEnv(t, awstest.Endpoint(t), nil), rcv)
	dir := t.TempDir()
	api := startChildCommand(t, env, filepath.Join(dir, "api.log"), "api")
	proc := startChildCommand(t, env, filepath.Join(dir, "processor.log"), "processor")
	placeTraced(t, "http://"+env["ORDERFLOW_API_ADDR"])
	assertOneTrace(t, rcv, wantTrace{
		api: "orderflow-api", processor: "orderflow-processor",
		apiSpans:       []string{"sqs send", "SQS.SendMessageBatch", "DynamoDB.PutItem"},
		processorSpans: []string{"DynamoDB.UpdateItem", "DynamoDB.TransactWriteItems"},
	})
	api.stop(t)
	proc.stop(t)
}

// TestLogsCarryTheTraceWithTracingOff: with no exporter configured, the
// request's log line and the order's transition lines carry trace_id and
// span_id, and the trace id is the client's.
func TestLogsCarryTheTraceWithTracingOff(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"ORDERFLOW_LOG_LEVEL": "info"})
	logPath := filepath.Join(t.TempDir(), "serve.log")
	c := startChildCommand(t, env, logPath, "serve")
	id := placeTraced(t, "http://"+env["ORDERFLOW_API_ADDR"])
	c.stop(t)

	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var request, transitions int
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		var l map[string]any
		if json.Unmarshal(lines.Bytes(), &l) != nil {
			continue
		}
		isRequest := l["msg"] == "http request" && l["route"] == "/orders" && l["method"] == "POST"
		isTransition := l["msg"] == "order transition" && l["order_id"] == id
		if !isRequest && !isTransition {
			continue
		}
		if l["trace_id"] != clientTraceID || len(asString(l["span_id"])) != 16 {
			t.Errorf("log line %s: trace_id %v span_id %v, want trace %s and a span id", lines.Text(), l["trace_id"], l["span_id"], clientTraceID)
		}
		if isRequest {
			request++
		} else {
			transitions++
		}
	}
	if request != 1 || transitions < 2 {
		t.Errorf("found %d request lines and %d transition lines of the order, want 1 and at least 2", request, transitions)
	}
}

func asString(v any) string { s, _ := v.(string); return s }

// A client without a traceparent starts a new trace all the same, which
// the processing continues (TestOneTrace* continue the client's).
func TestNewTraceWithoutTraceparent(t *testing.T) {
	t.Parallel()
	rcv := otlptest.Start(t)
	env := tracedEnv(testEnv(t, nil), rcv)
	c := startChildCommand(t, env, filepath.Join(t.TempDir(), "serve.log"), "serve")
	api := "http://" + env["ORDERFLOW_API_ADDR"]
	token := login(t, api, "nemo")
	var a accepted
	if resp := call(t, "POST", api+"/orders", token, map[string]any{"amount": 500}, &a); resp.StatusCode != 202 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	pollUntilTerminal(t, a.StatusURL, 30*time.Second)
	spans := rcv.WaitFor(t, 30*time.Second, "the order's processing span", func(spans []otlptest.Span) bool {
		for _, s := range spans {
			if s.Name == "process order" && s.Attributes["orderflow.order_id"] == a.OrderID {
				return true
			}
		}
		return false
	})
	var server, process otlptest.Span
	for _, s := range spans {
		switch {
		case s.Name == "process order" && s.Attributes["orderflow.order_id"] == a.OrderID:
			process = s
		case s.Name == "POST /orders":
			server = s
		}
	}
	if server.ParentSpanID != "" || process.TraceID != server.TraceID || process.ParentSpanID != server.SpanID {
		t.Errorf("server span %v, processing %v: want a root server span whose trace the processing continues as its child", server, process)
	}
	c.stop(t)
}
