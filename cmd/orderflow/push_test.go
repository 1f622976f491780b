package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/awstest"
)

// pushSettings slow the payment down, so that an order is followed through
// PROCESSING, allow one held status request per user, and read other
// processes' changes every 100 ms.
func pushSettings() map[string]string {
	return map[string]string{
		"ORDERFLOW_PAYMENT_LATENCY":      "1500ms",
		"ORDERFLOW_MAX_STREAMS_PER_USER": "1",
		"ORDERFLOW_WATCH_INTERVAL":       "100ms",
		"ORDERFLOW_WATCH_MAX_INTERVAL":   "400ms",
	}
}

func TestPushEmbedded(t *testing.T) {
	in := startRun(t, testEnv(t, pushSettings()))
	testPush(t, in.api)
}

func TestPushSplitMode(t *testing.T) {
	env := testEnv(t, pushSettings())
	logs := t.TempDir()
	startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	testPush(t, "http://"+env["ORDERFLOW_API_ADDR"])
}

func TestPushAWS(t *testing.T) {
	// The api and the processor in two processes: the api learns of the
	// processor's transitions only by reading DynamoDB.
	env := awsEnv(t, awstest.Endpoint(t), pushSettings())
	api := startRun(t, env, "api")
	startRun(t, env, "processor")
	testPush(t, api.api)
}

// testPush follows orders on api by server-sent events and long-polls.
func testPush(t *testing.T, api string) {
	t.Run("an event stream follows an order to its terminal status and closes", func(t *testing.T) {
		a := placeOrder(t, api, "sse-a")
		events, resp := readStream(t, a.StatusURL, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("got %d %q, want a 200 event stream", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var statuses []string
		for _, ev := range events {
			statuses = append(statuses, ev.doc.Status)
		}
		if len(events) < 2 || statuses[len(statuses)-1] != "COMPLETED" {
			t.Fatalf("statuses %v, want the changes ending in COMPLETED", statuses)
		}
		if strings.Join(statuses, ",") == "PENDING,COMPLETED" || !strings.Contains(strings.Join(statuses, ","), "PROCESSING") {
			t.Errorf("statuses %v, want PROCESSING among them (payments take 1.5 s)", statuses)
		}
		last := events[len(events)-1].id
		t.Run("resuming after the terminal event gets 204", func(t *testing.T) {
			if _, resp := readStream(t, a.StatusURL, last); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("got %d, want 204", resp.StatusCode)
			}
		})
		t.Run("resuming after an earlier event sends only what followed", func(t *testing.T) {
			rest, _ := readStream(t, a.StatusURL, events[0].id)
			if len(rest) != 1 || rest[0].id != last {
				t.Fatalf("got %d events (%+v), want the terminal one only", len(rest), rest)
			}
		})
	})
	t.Run("a long-poll returns on the change and 304 at its deadline", func(t *testing.T) {
		a := placeOrder(t, api, "poll-a")
		etag := `"pending-x"`
		for {
			resp := statusGet(t, a.StatusURL, "If-None-Match", etag, "Prefer", "wait=30")
			if resp.StatusCode != 200 {
				t.Fatalf("long-poll got %d, want 200 on a change", resp.StatusCode)
			}
			var doc statusDoc
			if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			etag = resp.Header.Get("ETag")
			if doc.Status == "COMPLETED" {
				break
			}
		}
		resp := statusGet(t, a.StatusURL, "If-None-Match", etag, "Prefer", "wait=1")
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Preference-Applied") != "wait=1" {
			t.Fatalf("got %d Preference-Applied %q, want 304 wait=1", resp.StatusCode, resp.Header.Get("Preference-Applied"))
		}
	})
	t.Run("a second stream of one user is 429 with Retry-After", func(t *testing.T) {
		a := placeOrder(t, api, "cap-a")
		b := placeOrder(t, api, "cap-a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.StatusURL, nil)
		req.Header.Set("Accept", "text/event-stream")
		first, err := http.DefaultClient.Do(req)
		if err != nil || first.StatusCode != 200 {
			t.Fatalf("first stream: %v %v", first, err)
		}
		defer first.Body.Close()
		resp := statusGet(t, b.StatusURL, "Accept", "text/event-stream")
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("second stream: got %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		cancel()
		waitForMetrics(t, api+"/metrics", 10*time.Second, "status_streams 0")
	})
}

// placeOrder places an order of user on api.
func placeOrder(t *testing.T, api, user string) accepted {
	t.Helper()
	var a accepted
	if resp := call(t, "POST", api+"/orders", login(t, api, user), map[string]any{"amount": 1250}, &a); resp.StatusCode != 202 {
		t.Fatalf("create: got %d", resp.StatusCode)
	}
	return a
}

// statusGet GETs a status URL with headers (name, value pairs) through the
// contract-checking client; the answer is read in full.
func statusGet(t *testing.T, url string, headers ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

type streamEvent struct {
	id  string
	doc statusDoc
}

// readStream reads the event stream of a status URL to its end (the
// server closes it after the terminal status), through the
// contract-checking client.
func readStream(t *testing.T, url, lastEventID string) ([]streamEvent, *http.Response) {
	t.Helper()
	headers := []string{"Accept", "text/event-stream"}
	if lastEventID != "" {
		headers = append(headers, "Last-Event-ID", lastEventID)
	}
	resp := statusGet(t, url, headers...)
	defer resp.Body.Close()
	var out []streamEvent
	var ev streamEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(line[6:]), &ev.doc); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		case line == "" && ev.id != "":
			out = append(out, ev)
			ev = streamEvent{}
		}
	}
	return out, resp
}
