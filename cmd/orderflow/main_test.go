package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"
)

// TestMain lets the crash test run this test binary as an orderflow child
// process: with ORDERFLOW_TEST_CHILD=1 it is the program, not the tests.
// The tests' own processes have it set too, for the replicator processes
// that the servers they run start (orderflow replicate, from this binary).
func TestMain(m *testing.M) {
	if os.Getenv("ORDERFLOW_TEST_CHILD") == "1" {
		main()
		os.Exit(0)
	}
	os.Setenv("ORDERFLOW_TEST_CHILD", "1")
	awsCredentials()
	os.Exit(m.Run())
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testEnv is a getenv over a map, with the settings every test needs.
func testEnv(t *testing.T, overrides map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{
		"ENV":                       "local",
		"ORDERFLOW_DB":              filepath.Join(t.TempDir(), "orderflow.db"),
		"ORDERFLOW_API_ADDR":        freeAddr(t),
		"ORDERFLOW_PROCESSOR_ADDR":  freeAddr(t),
		"ORDERFLOW_LOG_LEVEL":       "warn",
		"ORDERFLOW_PAYMENT_LATENCY": "1ms",
	}
	for k, v := range overrides {
		env[k] = v
	}
	registerPorts(env)
	return env
}

func getenvOf(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// instance is a running orderflow started by startRun.
type instance struct {
	api, processor string // base URLs
	env            map[string]string
	out            *logtest.Buffer
}

// startRun runs the program in-process ("serve" unless args say otherwise)
// and waits until it is ready; the test's cleanup stops it and checks that
// it stopped cleanly.
func startRun(t *testing.T, env map[string]string, args ...string) *instance {
	t.Helper()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{
		api:       "http://" + env["ORDERFLOW_API_ADDR"],
		processor: "http://" + env["ORDERFLOW_PROCESSOR_ADDR"],
		env:       env,
		out:       &logtest.Buffer{},
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, getenvOf(env), strings.NewReader(""), in.out, in.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v\n%s", err, in.out)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run did not stop within 30s after cancel\n%s", in.out)
		}
	})
	var urls []string
	if args[0] != "processor" {
		urls = append(urls, in.api+"/ready")
	}
	if args[0] != "api" {
		urls = append(urls, in.processor+"/ready")
	}
	for _, u := range urls {
		waitReady(t, u, done, in.out)
	}
	return in
}

func waitReady(t *testing.T, url string, done chan error, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run stopped before %s was ready: %v\n%s", url, err, out)
		default:
		}
		resp, err := testClient(t).Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 20s\n%s", url, out)
}

// call makes a JSON request and decodes a JSON answer into out (if non-nil).
func call(t *testing.T, method, url, token string, body any, out any) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp
}

func login(t *testing.T, api, user string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	resp := call(t, "POST", api+"/login", "", map[string]any{"user_id": user, "amount": 1}, &tok)
	if resp.StatusCode != 200 || tok.AccessToken == "" || tok.TokenType != "bearer" {
		t.Fatalf("login: got %d %+v", resp.StatusCode, tok)
	}
	return tok.AccessToken
}

type accepted struct {
	OrderID   string `json:"order_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
	ExpiresAt string `json:"expires_at"`
}

type statusDoc struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
	Region  string `json:"region"`
	Failure *struct {
		Type   string `json:"type"`
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"failure"`
	Cancellation *struct {
		RequestedBy string  `json:"requested_by"`
		RequestedAt string  `json:"requested_at"`
		CancelledAt *string `json:"cancelled_at"`
		Refunded    bool    `json:"refunded"`
		RefundID    string  `json:"refund_id"`
	} `json:"cancellation"`
}

// terminal reports whether the document's status is a final one.
func terminal(d statusDoc) bool {
	switch d.Status {
	case "COMPLETED", "REJECTED", "FAILED", "CANCELLED":
		return true
	}
	return false
}

// pollStatus reads a status document once (asking again after a 503).
func pollStatus(t *testing.T, statusURL string) statusDoc {
	t.Helper()
	return pollUntil(t, statusURL, 10*time.Second, func(statusDoc) bool { return true })
}

// pollUntil polls a signed status URL as a client would, until done holds
// for its document: a 503 with Retry-After (the store slow or unreachable
// for a moment) is asked again.
func pollUntil(t *testing.T, statusURL string, within time.Duration, done func(statusDoc) bool) statusDoc {
	t.Helper()
	deadline := time.Now().Add(within)
	var doc statusDoc
	for time.Now().Before(deadline) {
		var body json.RawMessage
		resp := call(t, "GET", statusURL, "", nil, &body)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		doc = statusDoc{}
		if resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("GET %s: %d %s", statusURL, resp.StatusCode, body)
		}
		if done(doc) {
			return doc
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("order at %s still %s in %q after %s", statusURL, doc.Status, doc.Region, within)
	return doc
}

// pollUntilTerminal polls a signed status URL as a client would until
// the order is terminal (see pollUntil).
func pollUntilTerminal(t *testing.T, statusURL string, within time.Duration) statusDoc {
	t.Helper()
	return pollUntil(t, statusURL, within, terminal)
}

// waitForMetrics polls url until its page holds every line in want, and
// fails the test after within, naming the lines still missing. The
// processor counts an outcome just after the store write that a poll can
// already see, and deletes its messages in batches after a delay, so a page
// read once right after an order ends may lag by a moment.
func waitForMetrics(t *testing.T, url string, within time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := metricsText(t, url)
		var missing, names []string
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = append(missing, w)
				name, _, _ := strings.Cut(w, "{")
				names = append(names, name)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var have []string
			slices.Sort(names)
			for _, name := range slices.Compact(names) {
				have = append(have, grepLines(m, name))
			}
			t.Fatalf("%s still lacks, after %s:\n%s\nit has:\n%s", url, within, strings.Join(missing, "\n"), strings.Join(have, "\n"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := testClient(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
