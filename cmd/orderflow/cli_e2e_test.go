package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/httpapi"
)

// The client commands end to end against a running orderflow, in each
// deployment: login, place, watch (by id and by status URL), list, and a
// bad request's problem. watch passes whether the server streams events
// or only answers polls.
func TestCLIEmbedded(t *testing.T) {
	in := startRun(t, testEnv(t, nil))
	testCLIFlow(t, in.api)
}

func TestCLISplitMode(t *testing.T) {
	env := testEnv(t, nil)
	logs := t.TempDir()
	startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	testCLIFlow(t, "http://"+env["ORDERFLOW_API_ADDR"])
}

func TestCLIAWS(t *testing.T) {
	in := startRun(t, awsEnv(t, awstest.Endpoint(t), nil))
	testCLIFlow(t, in.api)
}

var (
	orderIDLine  = regexp.MustCompile(`(?m)^order_id +(\S+)$`)
	statusLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (PENDING|PROCESSING|COMPLETED|REJECTED)( .+)?$`)
)

func testCLIFlow(t *testing.T, api string) {
	env := cliEnv(t, api)
	if out, errOut, code := runCLI(t, env, "", "login", "--user", "cli-user"); code != 0 || !strings.Contains(out, "logged in") {
		t.Fatalf("login: exit %d %q %q", code, out, errOut)
	}

	out, errOut, code := runCLI(t, env, "", "order", "place", "--amount", "12.50", "--currency", "EUR", "--item", "widget=2")
	m := orderIDLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("place: exit %d %q %q, want the order id", code, out, errOut)
	}
	completed := m[1]
	out, errOut, code = runCLI(t, env, "", "order", "watch", completed)
	checkWatch(t, out, errOut, code, 0, "COMPLETED")

	// 12.02 ends in the simulated gateway's declined cents.
	out, errOut, code = runCLI(t, env, "", "order", "place", "--amount", "12.02", "--json")
	var acc httpapi.Accepted
	if err := json.Unmarshal([]byte(out), &acc); code != 0 || err != nil || acc.StatusURL == "" {
		t.Fatalf("place --json: exit %d %q %q (%v), want the 202 body", code, out, errOut, err)
	}
	out, errOut, code = runCLI(t, env, "", "order", "watch", acc.StatusURL)
	checkWatch(t, out, errOut, code, exitRejected, "REJECTED")

	out, errOut, code = runCLI(t, env, "", "order", "list")
	for _, want := range []string{completed, string(acc.OrderID), "12.50 EUR", "12.02 USD", "COMPLETED", "REJECTED", "ORDER_ID"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("list: exit %d, stdout\n%s\nlacks %q (stderr %s)", code, out, want, errOut)
		}
	}
	out, _, code = runCLI(t, env, "", "order", "list", "--json")
	var page httpapi.OrderPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Orders) != 2 || page.Orders[0].OrderID != acc.OrderID {
		t.Errorf("list --json: exit %d %v, %d orders; want both, newest first\n%s", code, err, len(page.Orders), out)
	}

	out, errOut, code = runCLI(t, env, "", "order", "place", "--amount", "1", "--item", "widget=0")
	if code != 1 || out != "" || !strings.Contains(errOut, "Validation failed: items[0].quantity must be between 1 and") || strings.Contains(errOut, `{"`) {
		t.Errorf("bad request: exit %d, stdout %q, stderr %q; want 1 and the problem's title and detail, no JSON", code, out, errOut)
	}
}

func checkWatch(t *testing.T, out, errOut string, code, wantCode int, last string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for _, l := range lines {
		if !statusLineRE.MatchString(l) {
			t.Errorf("watch printed %q, want a time and a status", l)
		}
	}
	if code != wantCode || !strings.Contains(lines[len(lines)-1], " "+last) {
		t.Errorf("watch: exit %d, stdout\n%s\nwant exit %d after %s (stderr %s)", code, out, wantCode, last, errOut)
	}
	if last == "REJECTED" && !strings.Contains(lines[len(lines)-1], ": ") {
		t.Errorf("watch: %q lacks the failure's title and detail", lines[len(lines)-1])
	}
}

// A 503 and a lost answer between the client and a real server: place
// retries with the same Idempotency-Key, and the server keeps one order.
func TestCLIPlaceRetriesAgainstTheServer(t *testing.T) {
	in := startRun(t, testEnv(t, nil))
	target, _ := url.Parse(in.api)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	posts := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Method == "POST" && r.URL.Path == "/orders" {
			posts++
		}
		n := posts
		mu.Unlock()
		switch {
		case r.Method != "POST" || r.URL.Path != "/orders" || n > 2:
			proxy.ServeHTTP(w, r)
		case n == 1:
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			io.WriteString(w, `{"type":"https://orderflow.dev/problems/service-unavailable","title":"Service temporarily unavailable","status":503,"detail":"retry","instance":"/orders"}`)
		case n == 2: // the server takes the order; its answer is lost
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			if rec.Code != 202 {
				t.Errorf("the server answered the first order with %d %s", rec.Code, rec.Body)
			}
			<-r.Context().Done()
		}
	}))
	defer front.Close()
	env := cliEnv(t, front.URL)
	if _, errOut, code := runCLI(t, env, "", "login", "--user", "retry-user"); code != 0 {
		t.Fatalf("login: %s", errOut)
	}
	out, errOut, code := runCLI(t, env, "", "order", "place", "--amount", "3.50", "--timeout", "500ms")
	m := orderIDLine.FindStringSubmatch(out)
	if code != 0 || m == nil || strings.Count(errOut, "retrying") != 2 || !strings.Contains(errOut, "placed earlier") {
		t.Fatalf("place: exit %d, stdout %q, stderr %q; want two retries and the replayed order", code, out, errOut)
	}
	out, errOut, code = runCLI(t, env, "", "order", "list", "--json")
	var page httpapi.OrderPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Orders) != 1 || string(page.Orders[0].OrderID) != m[1] {
		t.Fatalf("list: exit %d %v %s %s; want the one order %s", code, err, out, errOut, m[1])
	}
	out, errOut, code = runCLI(t, env, "", "order", "watch", m[1])
	checkWatch(t, out, errOut, code, 0, "COMPLETED")
}

// Without dev login, the password comes from stdin with --password-stdin
// (no terminal to ask on); a wrong one is the api's problem.
func TestCLILoginWithAPassword(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("grace:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startRun(t, testEnv(t, map[string]string{"ORDERFLOW_DEV_LOGIN": "false", "ORDERFLOW_USERS_FILE": users}), "api")
	env := cliEnv(t, in.api)
	_, errOut, code := runCLI(t, env, "wrong\n", "login", "--user", "grace", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "Invalid credentials: unknown user_id or wrong password") {
		t.Errorf("wrong password: exit %d %q, want 1 and the problem", code, errOut)
	}
	if _, errOut, code = runCLI(t, env, "correct horse\n", "login", "--user", "grace", "--password-stdin"); code != 0 {
		t.Fatalf("login: exit %d %q", code, errOut)
	}
	out, errOut, code := runCLI(t, env, "", "order", "list")
	if code != 0 || !strings.HasPrefix(out, "ORDER_ID") {
		t.Errorf("list after login: exit %d %q %q", code, out, errOut)
	}
}

// order cancel end to end in the split mode: an order waiting for the
// processor (none runs yet) is CANCELLED at once, watch ends with the
// cancelled exit code, a second cancel answers the same; once a processor
// has completed an order, its cancel prints the order-final problem.
func TestCLICancel(t *testing.T) {
	env := testEnv(t, nil)
	logs := t.TempDir()
	startChildCommand(t, env, filepath.Join(logs, "api.log"), "api")
	cli := cliEnv(t, "http://"+env["ORDERFLOW_API_ADDR"])
	if _, errOut, code := runCLI(t, cli, "", "login", "--user", "cancel-user"); code != 0 {
		t.Fatalf("login: exit %d %s", code, errOut)
	}
	place := func() string {
		t.Helper()
		out, errOut, code := runCLI(t, cli, "", "order", "place", "--amount", "9.50")
		m := orderIDLine.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("place: exit %d %q %q", code, out, errOut)
		}
		return m[1]
	}

	pending := place()
	for range 2 { // the second cancel of a cancelled order is the same answer
		out, errOut, code := runCLI(t, cli, "", "order", "cancel", pending)
		if code != 0 || out != "order "+pending+" CANCELLED\n" {
			t.Errorf("cancel a PENDING order: exit %d %q %q, want CANCELLED", code, out, errOut)
		}
	}
	out, errOut, code := runCLI(t, cli, "", "order", "watch", pending)
	if code != exitCancelled || !strings.HasSuffix(out, " CANCELLED\n") {
		t.Errorf("watch a cancelled order: exit %d %q %q, want %d after CANCELLED", code, out, errOut, exitCancelled)
	}

	startChildCommand(t, env, filepath.Join(logs, "processor.log"), "processor")
	done := place()
	if out, errOut, code := runCLI(t, cli, "", "order", "watch", done); code != 0 {
		t.Fatalf("watch: exit %d %q %q, want COMPLETED", code, out, errOut)
	}
	out, errOut, code = runCLI(t, cli, "", "order", "cancel", done)
	if code != 1 || out != "" || !strings.Contains(errOut, "Order is final and can no longer be cancelled") || strings.Contains(errOut, `{"`) {
		t.Errorf("cancel a COMPLETED order: exit %d, stdout %q, stderr %q; want 1 and the order-final problem, no JSON", code, out, errOut)
	}
}
