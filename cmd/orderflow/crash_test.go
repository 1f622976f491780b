package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// child is orderflow running as a separate process (this test binary in
// child mode, see TestMain), so that it can be killed with SIGKILL.
type child struct {
	cmd  *exec.Cmd
	log  string        // the path of its output
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	// exited receives its exit status (for waitReady); env and command
	// are what it was started with.
	exited  chan error
	env     map[string]string
	command string
}

func startChild(t *testing.T, env map[string]string, logPath string) *child {
	t.Helper()
	return startChildCommand(t, env, logPath, "serve")
}

// startChildCommand starts orderflow's command (serve, api or processor)
// as a child process and waits until what it serves is ready.
func startChildCommand(t *testing.T, env map[string]string, logPath, command string) *child {
	t.Helper()
	c := launchChild(t, env, logPath, command)
	c.waitReady(t)
	return c
}

// launchChild starts orderflow's command as a child process without
// waiting for it; waitReady does.
func launchChild(t *testing.T, env map[string]string, logPath, command string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], command)
	cmd.Env = append(os.Environ(), "ORDERFLOW_TEST_CHILD=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, log: logPath, done: make(chan struct{}), exited: make(chan error, 1), env: env, command: command}
	go func() {
		c.err = cmd.Wait()
		log.Close()
		close(c.done)
		c.exited <- c.err
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-c.done })
	return c
}

// waitReady waits until what the child serves is ready, and fails the test
// if it exits first.
func (c *child) waitReady(t *testing.T) {
	t.Helper()
	out := stringerFunc(func() string { b, _ := os.ReadFile(c.log); return string(b) })
	if c.command != "processor" {
		waitReady(t, "http://"+c.env["ORDERFLOW_API_ADDR"]+"/ready", c.exited, out)
	}
	if c.command != "api" {
		waitReady(t, "http://"+c.env["ORDERFLOW_PROCESSOR_ADDR"]+"/ready", c.exited, out)
	}
}

// processedRE matches a count of orders_processed_total above zero.
var processedRE = regexp.MustCompile(`(?m)^orders_processed_total\{[^}]*\} [1-9]`)

// waitProcessing waits, for up to 60 s, until the child's processor has
// ended at least one order since it started.
func (c *child) waitProcessing(t *testing.T) {
	t.Helper()
	url := "http://" + c.env["ORDERFLOW_PROCESSOR_ADDR"] + "/metrics"
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if processedRE.Match(b) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the processor at %s ended no order within 60s", url)
		}
	}
}

type stringerFunc func() string

func (f stringerFunc) String() string { return f() }

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if <-c.done; c.err != nil {
		b, _ := os.ReadFile(c.log)
		t.Fatalf("graceful stop after SIGTERM: %v\n%s", c.err, b)
	}
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// crashClient places orders with idempotency keys and remembers, per key,
// whether the api answered 202 or the order's fate is still open: the
// answer was lost in the crash, or the api asked for a retry (503, or 409
// while the first request with the key is in flight). As a client library
// would, it retries those with the same key (placeRetrying): with a key, a
// 503 does not mean that no order exists (see awsintake.Intake.Accept),
// only that the client must ask again to learn which.
type crashClient struct {
	http    *http.Client // checks each exchange (testClient)
	apis    []string     // the api processes, taken in turn
	user    string
	token   string
	mu      sync.Mutex
	ok      map[string]accepted // by idempotency key
	unknown map[string]int      // key → amount, to be retried
	turn    int                 // requests sent, to take the apis in turn
	asked   int                 // answers that asked for a retry (503, 409)
	other   map[int]int         // any other answer but 202, by status: a bug
	// cancels are the keys whose order the client asked to cancel
	// (answered or not); cancelOther counts cancel answers other than
	// 200, 202, 409 (already final) and 503, by status: a bug.
	cancels     map[string]bool
	cancelOther map[int]int
}

// newCrashClient logs in as user "crash" and returns a client for the api
// processes apis (taken in turn).
func newCrashClient(t *testing.T, apis ...string) *crashClient {
	t.Helper()
	return newUserClient(t, "crash", apis...)
}

// newUserClient logs in as user and returns a client for the api
// processes apis (taken in turn).
func newUserClient(t *testing.T, user string, apis ...string) *crashClient {
	t.Helper()
	return &crashClient{http: testClient(t), apis: apis, user: user, token: login(t, apis[0], user),
		ok: map[string]accepted{}, unknown: map[string]int{}, other: map[int]int{},
		cancels: map[string]bool{}, cancelOther: map[int]int{}}
}

// cancel asks to cancel the order placed with key, as a customer might
// right after placing it: best effort, an answer lost in a crash is fine.
func (c *crashClient) cancel(key string) {
	c.mu.Lock()
	a := c.ok[key]
	api := c.apis[c.turn%len(c.apis)]
	c.turn++
	c.cancels[key] = true
	c.mu.Unlock()
	req, _ := http.NewRequest("POST", api+"/orders/"+a.OrderID+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusConflict, http.StatusServiceUnavailable:
	default:
		c.mu.Lock()
		c.cancelOther[resp.StatusCode]++
		c.mu.Unlock()
	}
}

// post places an order with the idempotency key at the next api process
// and returns its answer: the status (0 for a 202 without its document)
// and the response's header, or the transport's error.
func (c *crashClient) post(key string, amount int) (int, accepted, http.Header, error) {
	c.mu.Lock()
	api := c.apis[c.turn%len(c.apis)]
	c.turn++
	c.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"amount": amount, "items": []map[string]any{{"sku": "widget", "quantity": 1}}})
	req, _ := http.NewRequest("POST", api+"/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Idempotency-Key", key)
	var a accepted
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, a, nil, err
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if status == http.StatusAccepted && json.NewDecoder(resp.Body).Decode(&a) != nil {
		status = 0
	}
	return status, a, resp.Header, nil
}

func (c *crashClient) place(key string, amount int) error {
	status, a, _, err := c.post(key, amount)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.unknown[key] = amount
		return err
	case status == http.StatusServiceUnavailable || status == http.StatusConflict:
		c.unknown[key] = amount
		c.asked++
		return fmt.Errorf("key %s: status %d, retry later", key, status)
	case status != http.StatusAccepted:
		c.other[status]++
		return fmt.Errorf("key %s: status %d", key, status)
	}
	delete(c.unknown, key)
	c.ok[key] = a
	return nil
}

// TestCrashKill9 kills the whole program with SIGKILL twice, once while
// orders are being accepted and once while they are processed, and checks
// the invariants: every 202 ends terminal, a retried request is not a
// second order, no order is charged twice, stock moves once per order.
func TestCrashKill9(t *testing.T) {
	env := testEnv(t, crashSettings())
	logPath := filepath.Join(t.TempDir(), "child.log")
	api := "http://" + env["ORDERFLOW_API_ADDR"]

	c := startChild(t, env, logPath)
	cl := newCrashClient(t, api)

	loadUntilKilled(t, c, cl, 300)
	t.Logf("first kill: %d accepted, %d to retry (%d of them answered 503 or 409)", len(cl.ok), len(cl.unknown), cl.asked)

	// Restart; clients retry the requests whose answer was lost, with the
	// same idempotency key, as a client library would.
	c = startChild(t, env, logPath)
	for key, amount := range cl.unknown {
		if err := cl.place(key, amount); err != nil {
			t.Fatalf("retry after restart: %v", err)
		}
	}
	c.waitProcessing(t) // the processor is into the backlog
	c.kill9(t)
	c = startChild(t, env, logPath)

	final := cl.waitTerminal(t)
	c.stop(t)
	checkSQLiteBooks(t, env, cl, final)
}

// TestSplitModeProcessorKill9: in the split mode (orderflow api and
// orderflow processor on one file) the processor is killed with SIGKILL
// while it works a backlog the api keeps filling; the restarted processor
// brings every accepted order to a terminal state, none charged twice,
// stock moved once per order.
func TestSplitModeProcessorKill9(t *testing.T) {
	env := testEnv(t, crashSettings())
	logs := t.TempDir()
	api := startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	proc := startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	cl := newCrashClient(t, "http://"+env["ORDERFLOW_API_ADDR"])

	stop := cl.load()
	for _, n := range []int{200, 300} {
		if !cl.waitAccepted(n, 20*time.Second) {
			t.Fatalf("fewer than %d orders accepted within 20s", n)
		}
		if n == 200 {
			proc.kill9(t) // the api goes on without the processor
		}
	}
	stop()
	if len(cl.unknown) > 0 {
		t.Fatalf("%d requests to the api went unanswered", len(cl.unknown))
	}
	proc = startChildCommand(t, env, proc.log, "processor")

	final := cl.waitTerminal(t)
	api.stop(t)
	proc.stop(t)
	checkSQLiteBooks(t, env, cl, final)
}

// crashSettings are the settings of the crash tests: slow payments and few
// orders in work, so that a backlog builds up to crash into, short
// visibility so that redeliveries come soon, and no rate limit or fraud
// rules in the way of a load test.
func crashSettings() map[string]string {
	return map[string]string{
		"ORDERFLOW_PAYMENT_LATENCY":    "15ms",
		"ORDERFLOW_CONCURRENCY":        "16",
		"ORDERFLOW_VISIBILITY_TIMEOUT": "2s",
		"ORDERFLOW_RATE_LIMIT":         "1000000",
		"ORDERFLOW_STOCK":              fmt.Sprintf("widget:%d", crashStock),
		"ORDERFLOW_LOG_LEVEL":          "error",
		"ORDERFLOW_FRAUD_THRESHOLD":    "1000", // velocity and spend rules would reject a load test
	}
}

// crashStock is the widgets stocked for the crash tests; every order takes one.
const crashStock = 100000

// load has 8 clients place orders until the returned stop is called (it
// waits for them); a client stops at its first failed request.
func (cl *crashClient) load() (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				amount := 1000 + 100*n + 3*(n%5/4) // amounts ending in 03 fail transiently twice first
				key := fmt.Sprintf("w%d-%d", w, n)
				if cl.place(key, amount) != nil {
					return
				}
				switch {
				case n%4 == 1:
					cl.cancel(key) // most often PENDING still
				case n%4 == 3 && n >= 8:
					cl.cancel(fmt.Sprintf("w%d-%d", w, n-7)) // older: in work, or final (409)
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// waitAccepted reports whether n orders were acknowledged within d.
func (cl *crashClient) waitAccepted(n int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		cl.mu.Lock()
		got := len(cl.ok)
		cl.mu.Unlock()
		if got >= n {
			return true
		}
	}
	return false
}

// waitTerminal polls every acknowledged order until it is terminal and
// returns the final documents by idempotency key.
func (cl *crashClient) waitTerminal(t *testing.T) map[string]statusDoc {
	t.Helper()
	final := map[string]statusDoc{}
	for key, a := range cl.ok {
		final[key] = pollUntilTerminal(t, a.StatusURL, 60*time.Second)
	}
	return final
}

// checkSQLiteBooks checks the books in the embedded file of env, with the
// program stopped.
func checkSQLiteBooks(t *testing.T, env map[string]string, cl *crashClient, final map[string]statusDoc) {
	t.Helper()
	checkBooks(t, sqliteBooks(t, env), cl, final, crashStock)
}

// sqliteBooks opens the embedded file of env until the test ends.
func sqliteBooks(t *testing.T, env map[string]string) books {
	t.Helper()
	db, err := sqlite.Open(context.Background(), env["ORDERFLOW_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// loadUntilKilled places orders from 8 clients and kills c with SIGKILL
// under them once at least accepted orders were acknowledged (or after 10
// s); the clients stop at their first lost answer.
func loadUntilKilled(t *testing.T, c *child, cl *crashClient, accepted int) {
	t.Helper()
	stop := cl.load()
	cl.waitAccepted(accepted, 10*time.Second)
	c.kill9(t)
	stop()
}

// books is what the crash tests read back from a stopped program's store
// (sqlite.DB and dynamostore.Store both have it).
type books interface {
	ListOrders(ctx context.Context, userID string, cursor orderflow.OrderID, limit int) ([]orderflow.Order, error)
	Charges(ctx context.Context, id orderflow.OrderID) ([]orderflow.Charge, error)
	Stock(ctx context.Context, sku string) (int, error)
}

// checkBooks checks the crash invariants in the store: one order per
// idempotency key, exactly one charge per COMPLETED order, none for any
// other but a CANCELLED order whose charge was refunded, CANCELLED only
// when its cancel was asked for, and stock that moved once per COMPLETED
// order (each takes one widget of the initial stock; a cancelled order's
// reservation is released).
func checkBooks(t *testing.T, st books, cl *crashClient, final map[string]statusDoc, stock int) {
	t.Helper()
	completed := checkOrders(t, st, cl, final)
	checkStock(t, st, stock, completed)
	t.Logf("%d orders accepted, %d completed, every one terminal, charged and stocked once", len(final), completed)
}

// checkOrders checks cl's orders in the store: one per idempotency key,
// exactly one charge per COMPLETED order and none for any other. It
// returns the number COMPLETED.
func checkOrders(t *testing.T, st books, cl *crashClient, final map[string]statusDoc) int {
	t.Helper()
	ctx := context.Background()
	var orders []orderflow.Order
	for cursor := orderflow.OrderID(""); ; {
		page, err := st.ListOrders(ctx, cl.user, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, page...)
		if len(page) < 100 {
			break
		}
		cursor = page[len(page)-1].ID
	}
	if len(cl.other) > 0 {
		t.Errorf("answers other than 202, 503 and 409 (status → count, 0: a 202 without its document): %v", cl.other)
	}
	if len(cl.cancelOther) > 0 {
		t.Errorf("cancel answers other than 200, 202, 409 and 503 (status → count): %v", cl.cancelOther)
	}
	if len(orders) != len(cl.ok) {
		t.Errorf("got %d orders stored, want %d (one per idempotency key)", len(orders), len(cl.ok))
	}
	completed, cancelled, refunded := 0, 0, 0
	for key, doc := range final {
		charges, err := st.Charges(ctx, orderflow.OrderID(doc.OrderID))
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		switch doc.Status {
		case "COMPLETED":
			want = 1
			completed++
		case "CANCELLED":
			cancelled++
			if !cl.cancels[key] {
				t.Errorf("order %s (key %s) is CANCELLED, but no cancel was asked for", doc.OrderID, key)
			}
			if doc.Cancellation != nil && doc.Cancellation.Refunded {
				want = 1 // charged, and refunded
				refunded++
			}
		}
		if len(charges) != want {
			t.Errorf("order %s (key %s) is %s (%+v, cancellation %+v) with %d charges, want %d", doc.OrderID, key, doc.Status, doc.Failure, doc.Cancellation, len(charges), want)
		}
	}
	t.Logf("%d cancels asked for: %d orders CANCELLED, %d of them refunded", len(cl.cancels), cancelled, refunded)
	return completed
}

// checkStock checks that the widgets left are the stock less one per
// completed order.
func checkStock(t *testing.T, st books, stock, completed int) {
	t.Helper()
	left, err := st.Stock(context.Background(), "widget")
	if err != nil {
		t.Fatal(err)
	}
	if left != stock-completed {
		t.Errorf("stock: got %d left, want %d - %d completed = %d", left, stock, completed, stock-completed)
	}
}
