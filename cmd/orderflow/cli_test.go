package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// cliEnv is the environment of a client command against api, with its
// own token directory.
func cliEnv(t *testing.T, api string) map[string]string {
	t.Helper()
	return map[string]string{"ORDERFLOW_URL": api, "XDG_CONFIG_HOME": t.TempDir()}
}

// runCLI runs a client command in-process and returns what it printed and
// the exit status main would give it (its error goes to stderr as main
// prints it).
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, args, getenvOf(env), strings.NewReader(stdin), &out, &errb)
	if err != nil {
		fmt.Fprintln(&errb, "orderflow:", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

// withToken stores a token for env's api, as orderflow login would.
func withToken(t *testing.T, env map[string]string, exp time.Time) {
	t.Helper()
	s := tokenStore{filepath.Join(env["XDG_CONFIG_HOME"], "orderflow")}
	if err := s.save(env["ORDERFLOW_URL"], storedToken{User: "u1", AccessToken: "tok-u1", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
}

func writeJSONAnswer(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func TestTokenStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "orderflow")
	s := tokenStore{dir}
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	if _, err := s.load("http://a", now); err == nil || !strings.Contains(err.Error(), "run orderflow login") {
		t.Errorf("load before any login: %v, want a hint to run orderflow login", err)
	}
	if err := s.save("http://a", storedToken{User: "ua", AccessToken: "ta", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.save("http://b", storedToken{User: "ub", AccessToken: "tb", ExpiresAt: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.load("http://a", now); err != nil || got.AccessToken != "ta" {
		t.Errorf("token of a: %+v, %v; want ta (b's login must not replace it)", got, err)
	}
	if _, err := s.load("http://b", now); err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "run orderflow login --user ub") {
		t.Errorf("expired token of b: %v, want it called expired with a hint to log in again", err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.path(): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("token dir holds %d files, want tokens.json alone (no temporary files left)", len(ents))
	}
}

func TestClientConfig(t *testing.T) {
	c, err := loadClientConfig(getenvOf(map[string]string{"HOME": "/home/ann"}))
	if err != nil || c.URL != "http://localhost:8000" || c.TokenDir != "/home/ann/.config/orderflow" {
		t.Errorf("defaults: %+v, %v; want http://localhost:8000 and ~/.config/orderflow", c, err)
	}
	c, err = loadClientConfig(getenvOf(map[string]string{"HOME": "/home/ann", "XDG_CONFIG_HOME": "/cfg", "ORDERFLOW_URL": "https://api.example.com/"}))
	if err != nil || c.URL != "https://api.example.com" || c.TokenDir != "/cfg/orderflow" {
		t.Errorf("set: %+v, %v; want the URL without its slash and $XDG_CONFIG_HOME/orderflow", c, err)
	}
	if _, err := loadClientConfig(getenvOf(map[string]string{"HOME": "/h", "ORDERFLOW_URL": "localhost:8000"})); err == nil || !strings.Contains(err.Error(), "ORDERFLOW_URL") {
		t.Errorf("a URL without scheme: %v, want an error naming ORDERFLOW_URL", err)
	}
}

// A 503 and a timeout are retried with the same Idempotency-Key, waiting
// as Retry-After says.
func TestPlaceRetriesWithTheSameKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(keys)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3")
			writeJSONAnswer(w, 503, "application/problem+json", httpapi.Problem{Type: "https://orderflow.dev/problems/service-unavailable", Title: "Service temporarily unavailable", Status: 503})
		case 2:
			io.Copy(io.Discard, r.Body) // then the server sees the client go
			<-r.Context().Done()        // no answer: the client's timeout
		default:
			writeJSONAnswer(w, 202, "application/json", httpapi.Accepted{OrderID: "o1", Status: "PENDING", StatusURL: "http://x/orders/o1/status"})
		}
	}))
	defer srv.Close()
	var log bytes.Buffer
	c := newAPIClient(clientConfig{URL: srv.URL}, &log)
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	a, err := c.place(context.Background(), httpapi.OrderRequest{Amount: 1250}, "key-1", 200*time.Millisecond)
	if err != nil || a.status != 202 {
		t.Fatalf("place: %d, %v; want the 202 of the third attempt", a.status, err)
	}
	if fmt.Sprint(keys) != "[key-1 key-1 key-1]" {
		t.Errorf("Idempotency-Keys sent %v, want key-1 three times", keys)
	}
	if fmt.Sprint(waits) != "[3s 2s]" {
		t.Errorf("waits %v, want Retry-After's 3s, then the 2s backoff after the timeout", waits)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("no remark on the retries: %q", log.String())
	}
}

// Retries are bounded, and what is left is the server's problem, shown
// as title and detail.
func TestPlaceGivesUpAfterBoundedAttempts(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Retry-After", "0")
		writeJSONAnswer(w, 503, "application/problem+json", httpapi.Problem{Type: "https://orderflow.dev/problems/store-unavailable", Title: "Store unavailable", Status: 503, Detail: "the store is down", RequestID: "r-9"})
	}))
	defer srv.Close()
	env := cliEnv(t, srv.URL)
	withToken(t, env, time.Now().Add(time.Hour))
	out, errOut, code := runCLI(t, env, "", "order", "place", "--amount", "12.50")
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	if n != placeAttempts {
		t.Errorf("%d attempts, want %d", n, placeAttempts)
	}
	if !strings.Contains(errOut, "Store unavailable: the store is down") || !strings.Contains(errOut, "r-9") || strings.Contains(errOut, `{"`) {
		t.Errorf("stderr %q, want the problem's title, detail and request id, no JSON", errOut)
	}
}

func TestPlaceSendsTheOrderInMinorUnits(t *testing.T) {
	var got httpapi.OrderRequest
	var auth, key string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, key = r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key")
		json.NewDecoder(r.Body).Decode(&got)
		writeJSONAnswer(w, 202, "application/json", httpapi.Accepted{OrderID: "o1", Status: "PENDING", StatusURL: "http://x/orders/o1/status?sig=a&kid=b"})
	}))
	defer srv.Close()
	env := cliEnv(t, srv.URL)
	withToken(t, env, time.Now().Add(time.Hour))
	out, errOut, code := runCLI(t, env, "", "order", "place", "--amount", "12.5", "--currency", "eur", "--item", "widget=2", "--item", "gadget=1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got.Amount != 1250 || got.Currency != "EUR" || fmt.Sprint(got.Items) != "[{widget 2} {gadget 1}]" {
		t.Errorf("sent %+v, want 1250 EUR with both items", got)
	}
	if auth != "Bearer tok-u1" || len(key) < 16 {
		t.Errorf("Authorization %q, Idempotency-Key %q; want the stored token and a generated key", auth, key)
	}
	if !strings.Contains(out, "o1") || !strings.Contains(out, "http://x/orders/o1/status?sig=a&kid=b") {
		t.Errorf("stdout %q, want the order id and its status URL", out)
	}
	for _, bad := range [][]string{{"--amount", "12.505"}, {"--amount", "1", "--item", "widget"}, {"--amount", "12.5", "--currency", "JPY"}} {
		if _, errOut, code := runCLI(t, env, "", append([]string{"order", "place"}, bad...)...); code != 1 || errOut == "" {
			t.Errorf("place %v: exit %d %q, want 1 with a reason", bad, code, errOut)
		}
	}
}

func TestReadSSE(t *testing.T) {
	stream := ": connected\n\n" +
		"id: e1\nevent: status\ndata: {\"a\":1}\n\n" +
		": heartbeat\n" +
		"event: status\r\ndata: line1\r\ndata:line2\r\nretry: 1500\r\n\r\n" +
		"data: plain\n\n" +
		"id: e4\ndata: cut off by the end"
	var got []sseEvent
	if err := readSSE(strings.NewReader(stream), "e0", func(ev sseEvent) bool { got = append(got, ev); return true }); err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{
		{ID: "e1", Event: "status", Data: `{"a":1}`},
		{ID: "e1", Event: "status", Data: "line1\nline2", Retry: 1500 * time.Millisecond},
		{ID: "e1", Event: "message", Data: "plain", Retry: 1500 * time.Millisecond},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n%v\nwant\n%v", got, want)
	}
}

// statusDocument is a status document of order o1 in status s.
func statusDocument(s string, at time.Time) httpapi.OrderView {
	v := httpapi.OrderView{OrderID: "o1", Status: orderflow.Status(s), Amount: 1250, Currency: "USD", CreatedAt: at, UpdatedAt: at}
	if s == "REJECTED" || s == "FAILED" {
		v.Failure = &httpapi.FailureView{Type: "https://orderflow.dev/problems/payment-declined", Title: "Payment declined", Detail: "the card was declined (simulated)", Code: "payment_declined"}
	}
	return v
}

func sseEventOf(id string, v httpapi.OrderView) string {
	b, _ := json.Marshal(v)
	return "id: " + id + "\nevent: status\ndata: " + string(b) + "\n\n"
}

// idLog records the Last-Event-ID of each request a test server gets.
type idLog struct {
	mu  sync.Mutex
	ids []string
}

// add records r's Last-Event-ID and returns how many requests came so far.
func (l *idLog) add(r *http.Request) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, r.Header.Get("Last-Event-ID"))
	return len(l.ids)
}

func (l *idLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.ids)
}

// The stream breaks after PENDING; the reconnect carries Last-Event-ID
// and the watch prints each status with its time, then exits 2 on REJECTED.
func TestWatchFollowsServerSentEvents(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 40, 1, 0, time.UTC)
	var lastIDs idLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := lastIDs.add(r)
		if r.Header.Get("Accept") == "" || !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			t.Errorf("Accept %q, want text/event-stream", r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			fmt.Fprint(w, "retry: 5\n\n: heartbeat\n\n"+sseEventOf(`"e1"`, statusDocument("PENDING", t0)))
			return // the stream breaks
		}
		fmt.Fprint(w, sseEventOf(`"e1"`, statusDocument("PENDING", t0))+": heartbeat\n\n"+
			sseEventOf(`"e2"`, statusDocument("PROCESSING", t0.Add(time.Second)))+
			sseEventOf(`"e3"`, statusDocument("REJECTED", t0.Add(2*time.Second))))
	}))
	defer srv.Close()
	out, errOut, code := runCLI(t, cliEnv(t, srv.URL), "", "order", "watch", srv.URL+"/orders/o1/status?sig=x")
	want := "2026-12-02T03:40:01Z PENDING\n2026-12-02T03:40:02Z PROCESSING\n2026-12-02T03:40:03Z REJECTED Payment declined: the card was declined (simulated)\n"
	if out != want || code != exitRejected {
		t.Errorf("exit %d, stdout\n%s\nwant %d and\n%s\n(stderr %s)", code, out, exitRejected, want, errOut)
	}
	if got := lastIDs.String(); got != `[ "e1"]` {
		t.Errorf("Last-Event-IDs %q, want none, then the first stream's last id", got)
	}
}

// A stream that goes silent (no event, no heartbeat) is taken for dead
// after the idle time and resumed with Last-Event-ID.
func TestWatchResumesASilentStream(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 40, 1, 0, time.UTC)
	var lastIDs idLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := lastIDs.add(r)
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 {
			fmt.Fprint(w, sseEventOf(`"e1"`, statusDocument("PENDING", t0)))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // silent, as a connection cut on the way
			return
		}
		fmt.Fprint(w, sseEventOf(`"e2"`, statusDocument("COMPLETED", t0.Add(time.Second))))
	}))
	defer srv.Close()
	var log bytes.Buffer
	c := newAPIClient(clientConfig{URL: srv.URL}, &log)
	c.streamIdle = 100 * time.Millisecond
	c.sleep = func(context.Context, time.Duration) error { return nil }
	var got []orderflow.Status
	err := c.follow(context.Background(), srv.URL+"/orders/o1/status?sig=x", func(v httpapi.OrderView) bool {
		got = append(got, v.Status)
		return v.Status.Terminal()
	})
	if err != nil || fmt.Sprint(got) != "[PENDING COMPLETED]" {
		t.Fatalf("follow: %v, saw %v; want PENDING then COMPLETED", err, got)
	}
	if got := lastIDs.String(); got != `[ "e1"]` {
		t.Errorf("Last-Event-IDs %q, want none, then the silent stream's last id", got)
	}
	if !strings.Contains(log.String(), "sent nothing for 100ms") {
		t.Errorf("no remark on the silent stream: %q", log.String())
	}
}

// A server that answers with the document (no SSE) is polled with
// If-None-Match; a 304 and a 503 are waited out.
func TestWatchFallsBackToPolling(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 40, 1, 0, time.UTC)
	var mu sync.Mutex
	var conds []string
	steps := []string{"PENDING", "304", "503", "PROCESSING", "FAILED"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conds = append(conds, r.Header.Get("If-None-Match"))
		step := steps[min(len(conds), len(steps))-1]
		mu.Unlock()
		w.Header().Set("Retry-After", "0")
		switch step {
		case "304":
			w.WriteHeader(304)
		case "503":
			writeJSONAnswer(w, 503, "application/problem+json", httpapi.Problem{Type: "https://orderflow.dev/problems/service-unavailable", Title: "Service temporarily unavailable", Status: 503})
		default:
			w.Header().Set("ETag", `"`+step+`"`)
			writeJSONAnswer(w, 200, "application/json", statusDocument(step, t0))
		}
	}))
	defer srv.Close()
	out, errOut, code := runCLI(t, cliEnv(t, srv.URL), "", "order", "watch", srv.URL+"/orders/o1/status?sig=x")
	if code != exitFailed || strings.Count(out, "\n") != 3 || !strings.HasSuffix(out, "FAILED Payment declined: the card was declined (simulated)\n") {
		t.Errorf("exit %d, stdout\n%s\nwant %d after PENDING, PROCESSING, FAILED (stderr %s)", code, out, exitFailed, errOut)
	}
	if fmt.Sprint(conds) != `[ "PENDING" "PENDING" "PENDING" "PROCESSING"]` {
		t.Errorf("If-None-Match sent %q, want the last ETag on each poll", conds)
	}
}

func TestCancel(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 40, 1, 0, time.UTC)
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/orders/pending/cancel":
			writeJSONAnswer(w, 200, "application/json", statusDocument("CANCELLED", t0))
		case "/orders/busy/cancel":
			writeJSONAnswer(w, 202, "application/json", statusDocument("PROCESSING", t0))
		case "/orders/done/cancel":
			writeJSONAnswer(w, 409, "application/problem+json", httpapi.Problem{Type: "https://orderflow.dev/problems/order-final", Title: "Order is final", Status: 409, Detail: "order done is COMPLETED and cannot be cancelled"})
		default:
			writeJSONAnswer(w, 404, "application/problem+json", httpapi.Problem{Type: "https://orderflow.dev/problems/not-found", Title: "Not found", Status: 404, Detail: "order nope not found"})
		}
	}))
	defer srv.Close()
	env := cliEnv(t, srv.URL)
	withToken(t, env, time.Now().Add(time.Hour))
	for _, tt := range []struct {
		id, out, err string
		code         int
	}{
		{"pending", "CANCELLED", "", 0},
		{"busy", "cancel requested", "", 0},
		{"done", "", "Order is final: order done is COMPLETED and cannot be cancelled", 1},
		{"nope", "", "Not found: order nope not found", 1},
	} {
		out, errOut, code := runCLI(t, env, "", "order", "cancel", tt.id)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) || strings.Contains(errOut, "{") {
			t.Errorf("cancel %s: exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.id, code, out, errOut, tt.code, tt.out, tt.err)
		}
	}
	if paths[0] != "POST /orders/pending/cancel Bearer tok-u1" {
		t.Errorf("request %q, want POST /orders/pending/cancel with the token", paths[0])
	}
}

func TestClientCommandsNeedALogin(t *testing.T) {
	env := cliEnv(t, "http://127.0.0.1:1")
	withToken(t, env, time.Now().Add(-time.Minute))
	_, errOut, code := runCLI(t, env, "", "order", "list")
	if code != 1 || !strings.Contains(errOut, "expired") || !strings.Contains(errOut, "run orderflow login") {
		t.Errorf("exit %d %q, want 1 and a hint to log in again", code, errOut)
	}
	_, errOut, code = runCLI(t, cliEnv(t, "http://127.0.0.1:1"), "", "login", "--user", "u1")
	if code != 1 || !strings.Contains(errOut, "cannot connect to http://127.0.0.1:1") {
		t.Errorf("exit %d %q, want 1 and a readable network error", code, errOut)
	}
}

// list follows next_cursor to the last page and prints a table.
func TestListFollowsTheCursor(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 40, 1, 0, time.UTC)
	var cursors []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cursors = append(cursors, r.URL.Query().Get("cursor"))
		a, b := statusDocument("COMPLETED", t0), statusDocument("REJECTED", t0)
		a.OrderID, b.OrderID, b.Currency, b.Amount = "o2", "o1", "JPY", 1250
		next := "c2"
		page := httpapi.OrderPage{Orders: []httpapi.OrderView{a}, NextCursor: &next}
		if r.URL.Query().Get("cursor") == "c2" {
			page = httpapi.OrderPage{Orders: []httpapi.OrderView{b}}
		}
		writeJSONAnswer(w, 200, "application/json", page)
	}))
	defer srv.Close()
	env := cliEnv(t, srv.URL)
	withToken(t, env, time.Now().Add(time.Hour))
	out, errOut, code := runCLI(t, env, "", "order", "list")
	want := "ORDER_ID  STATUS     AMOUNT     CREATED_AT\n" +
		"o2        COMPLETED  12.50 USD  2026-12-02T03:40:01Z\n" +
		"o1        REJECTED   1250 JPY   2026-12-02T03:40:01Z\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, stdout\n%s\nwant\n%s(stderr %s)", code, out, want, errOut)
	}
	if fmt.Sprint(cursors) != "[ c2]" {
		t.Errorf("cursors sent %q, want none, then c2", cursors)
	}
}
