package main

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"golang.org/x/crypto/bcrypt"

	"github.com/orderflow/orderflow/httpapi"
)

// updateScreenshot refreshes the README's picture of the page:
//
//	go test ./cmd/orderflow -run TestBrowser -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "copy the browser test's screenshot of the order page to docs/screenshot.png")

// screenshotDir is where the browser tests save their screenshots; the
// folder is git-ignored (/artifacts/), and CI keeps it as an artifact.
const screenshotDir = "../../artifacts/screenshots"

// chromiumPath finds Debian's Chromium. Without it the browser tests skip,
// except under CI=true, where they must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); the browser tests must run in CI")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium)")
	return ""
}

// startBrowser starts one headless Chromium with a fresh profile for the
// whole test; each part of the test opens its own tab.
func startBrowser(t *testing.T, execPath string) context.Context {
	t.Helper()
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Any request that is not to this machine goes to a dead proxy,
		// so a page that needed the internet would fail to render.
		chromedp.ProxyServer("http://127.0.0.1:9"),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// instrument runs in every document before the page's own scripts and
// records what a person would see as a broken page: CSP violations,
// uncaught errors and rejected promises.
const instrument = `(() => {
  const problems = [];
  Object.defineProperty(window, "__problems", { value: problems });
  document.addEventListener("securitypolicyviolation", (e) =>
    problems.push("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline code")));
  window.addEventListener("error", (e) =>
    problems.push("error: " + (e.message || "loading " + (e.target && (e.target.src || e.target.href)))), true);
  window.addEventListener("unhandledrejection", (e) => problems.push("unhandled rejection: " + e.reason));
})();`

// tab is one browser tab of a test, with its deadline.
type tab struct {
	ctx  context.Context // with the test's deadline
	base context.Context // without it, to diagnose a failure after the deadline
	name string
}

// newTab opens a tab that records page problems; it closes with the test.
func newTab(t *testing.T, browser context.Context, name string, timeout time.Duration) *tab {
	t.Helper()
	tabCtx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	if _, err := chromedp.Call(tabCtx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: instrument}); err != nil {
		t.Fatalf("instrument tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(tabCtx, timeout)
	t.Cleanup(cancelTimeout)
	return &tab{ctx: ctx, base: tabCtx, name: name}
}

// do runs actions; on failure it saves a screenshot and reports what the
// page's message region said.
func (b *tab) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		ctx, cancel := context.WithTimeout(b.base, 5*time.Second)
		defer cancel()
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
			message: (document.querySelector("#message") || {}).textContent,
			status: (document.querySelector("#t-status") || {}).textContent,
			problems: window.__problems,
		})`))
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.MkdirAll(screenshotDir, 0o755)
			_ = os.WriteFile(filepath.Join(screenshotDir, "failure-"+b.name+".png"), png, 0o644)
		}
		t.Fatalf("%v; the page: %s; see %s", err, state, filepath.Join(screenshotDir, "failure-"+b.name+".png"))
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](t *testing.T, b *tab, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *tab) text(t *testing.T, css string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// shot saves a PNG screenshot of the whole page (or of the window, if not
// full) as artifacts/screenshots/name.png.
func (b *tab) shot(t *testing.T, name string, full bool) []byte {
	t.Helper()
	capture := chromedp.CaptureScreenshot()
	if full {
		capture = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(b.ctx, capture)
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return nil
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	return png
}

// checkHealthy fails the test for every problem the instrumentation saw in
// the current document, and for every resource it loaded from elsewhere
// than origin.
func (b *tab) checkHealthy(t *testing.T, origin string) {
	t.Helper()
	for _, p := range eval[[]string](t, b, `window.__problems || ["the page was not instrumented"]`) {
		t.Errorf("%s: %s", b.name, p)
	}
	urls := eval[[]string](t, b, `[location.href].concat(performance.getEntriesByType("resource").map((e) => e.name))`)
	for _, u := range urls {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "blob:") {
			t.Errorf("%s loaded %s, which is not from this server", b.name, u)
		}
	}
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// retype empties the input that sel finds and types text into it.
func retype(sel, text string) chromedp.Action[chromedp.Void] {
	q, _ := json.Marshal(sel)
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+string(q)+`).value = ""`),
		chromedp.SendKeys(css(sel), text),
	)
}

// statusRequests is the number of GETs of status URLs api answered.
func statusRequests(t *testing.T, api string) float64 {
	t.Helper()
	var n float64
	for _, line := range strings.Split(metricsText(t, api+"/metrics"), "\n") {
		if strings.HasPrefix(line, "http_requests_total{") && strings.Contains(line, `method="GET",route="/orders/{id}/status"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}

// TestBrowser drives the order page and /docs in one headless
// Chromium against a running orderflow. Payments take 3 s, so that an
// order is seen PROCESSING while the page follows it by server-sent
// events; the rate limit is 2 orders a minute.
func TestBrowser(t *testing.T) {
	execPath := chromiumPath(t)
	in := startRun(t, testEnv(t, map[string]string{
		"ORDERFLOW_RATE_LIMIT":      "2",
		"ORDERFLOW_PAYMENT_LATENCY": "3s",
	}))
	browser := startBrowser(t, execPath)
	origin := in.api

	t.Run("order page", func(t *testing.T) {
		t.Parallel()
		testOrderPage(t, browser, in)
	})
	t.Run("phone width by keyboard only", func(t *testing.T) {
		t.Parallel()
		testPhoneKeyboard(t, browser, in)
	})
	t.Run("a server that checks passwords asks for one", func(t *testing.T) {
		t.Parallel()
		testPasswordLogin(t, browser)
	})
	t.Run("an order in work is cancelled with its Cancel button", func(t *testing.T) {
		t.Parallel()
		testCancelButton(t, browser, in)
	})
	t.Run("a refused event stream falls back to polling", func(t *testing.T) {
		t.Parallel()
		testPollingFallback(t, browser)
	})
	t.Run("Swagger UI renders offline", func(t *testing.T) {
		t.Parallel()
		b := newTab(t, browser, "swagger", 30*time.Second)
		b.do(t, chromedp.Navigate(origin+"/docs"), chromedp.WaitVisible(css(".opblock")))
		want := operationCount(t, origin)
		if got := eval[int](t, b, `document.querySelectorAll(".opblock").length`); got != want {
			t.Errorf("Swagger UI shows %d operations, want the %d of openapi.json", got, want)
		}
		if got := b.text(t, ".swagger-ui"); !strings.Contains(got, "/orders/{id}/status") {
			t.Errorf("Swagger UI lacks the status operation: %.200q", got)
		}
		b.shot(t, "swagger-ui", false)
		b.checkHealthy(t, origin)
	})
	t.Run("a bookmark of /redoc lands on Swagger UI", func(t *testing.T) {
		t.Parallel()
		b := newTab(t, browser, "redoc", 30*time.Second)
		b.do(t, chromedp.Navigate(origin+"/redoc"), chromedp.WaitVisible(css(".opblock")))
		if got := eval[string](t, b, `location.pathname`); got != "/docs" {
			t.Errorf("/redoc ended at %q, want /docs", got)
		}
		b.checkHealthy(t, origin)
	})
}

// operationCount is the number of operations openapi.json describes.
func operationCount(t *testing.T, api string) int {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if resp := call(t, "GET", api+"/openapi.json", "", nil, &doc); resp.StatusCode != 200 {
		t.Fatalf("GET /openapi.json: %d", resp.StatusCode)
	}
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	return n
}

func testOrderPage(t *testing.T, browser context.Context, in *instance) {
	b := newTab(t, browser, "order-page", 50*time.Second)
	b.do(t, chromedp.Navigate(in.api+"/"), chromedp.WaitVisible(css("#user-id")))

	t.Run("amounts typed in currency units become minor units", func(t *testing.T) {
		tests := []struct {
			name, in, currency string
			want               int64
			wantErr            string
		}{
			{"cents are kept exactly", "12.50", "USD", 1250, ""},
			{"one decimal is tens of cents", "12.5", "USD", 1250, ""},
			{"no float rounding", "0.29", "USD", 29, ""},
			{"thousands separators are ignored", "1,234.56", "USD", 123456, ""},
			{"a decimal comma is understood", "12,50", "EUR", 1250, ""},
			{"a currency symbol and spaces are ignored", "$ 7.05", "USD", 705, ""},
			{"yen have no minor unit", "1500", "JPY", 1500, ""},
			{"yen with decimals are refused", "15.5", "JPY", 0, "no decimals"},
			{"a third decimal is refused", "1.234", "USD", 0, "at most 2 decimals"},
			{"zero is refused", "0", "USD", 0, "more than zero"},
			{"a negative amount is refused", "-3", "USD", 0, "more than zero"},
			{"an empty amount asks for one", "", "USD", 0, "Enter an amount"},
			{"words are refused", "abc", "USD", 0, "as a number"},
			{"more than the API's maximum is refused", "100000000.01", "USD", 0, "at most"},
		}
		cases := make([]map[string]string, len(tests))
		for i, tt := range tests {
			cases[i] = map[string]string{"in": tt.in, "currency": tt.currency}
		}
		casesJSON, _ := json.Marshal(cases)
		type result struct {
			Value int64  `json:"value"`
			Error string `json:"error"`
		}
		got := eval[[]result](t, b, `Promise.all([import("./app/money.js"), import("./app/rules.js").then((r) => r.loadRules())]).then(([m, rules]) => `+string(casesJSON)+`.map((c) => m.parseAmount(c.in, c.currency, rules.amount.max)))`, chromedp.EvalAwaitPromise)
		if len(got) != len(tests) {
			t.Fatalf("got %d results for %d cases", len(got), len(tests))
		}
		for i, tt := range tests {
			if got[i].Value != tt.want || !strings.Contains(got[i].Error, tt.wantErr) || (tt.wantErr == "") != (got[i].Error == "") {
				t.Errorf("%s: parseAmount(%q, %s) = %+v, want %d %q", tt.name, tt.in, tt.currency, got[i], tt.want, tt.wantErr)
			}
		}
	})

	t.Run("a person logs in with a user id", func(t *testing.T) {
		if !eval[bool](t, b, `document.querySelector("#password-field").hidden`) {
			t.Error("the password field is shown although the server is in dev mode")
		}
		b.do(t, chromedp.SendKeys(css("#user-id"), "ada"+kb.Enter), chromedp.WaitVisible(css("#amount")))
		if got := b.text(t, "#session-user"); got != "ada" {
			t.Errorf("signed in as %q, want ada", got)
		}
		if got := eval[string](t, b, `document.activeElement.id`); got != "amount" {
			t.Errorf("focus is on #%s after login, want the amount", got)
		}
		if got := eval[string](t, b, `JSON.stringify(sessionStorage) + location.href`); strings.Contains(got, "token=") || !strings.Contains(got, "orderflow.session") {
			t.Errorf("the token is not (only) in sessionStorage: %s", got)
		}
	})

	var completedID string
	t.Run("an order with an item is followed to COMPLETED", func(t *testing.T) {
		before := statusRequests(t, in.api)
		b.do(t,
			chromedp.SendKeys(css("#amount"), "12.50"),
			chromedp.Click(css("#add-item")),
			chromedp.SendKeys(css("#items li:nth-child(1) .item-sku"), "widget"),
			chromedp.SetValue(css("#items li:nth-child(1) .item-qty"), "2"),
			chromedp.Click(css("#place-order")),
			chromedp.WaitVisible(css(`#t-status[data-status="PROCESSING"]`)),
		)
		b.shot(t, "order-processing", true)
		b.do(t, chromedp.WaitVisible(css(`#t-status[data-status="COMPLETED"]`)))
		if got := b.text(t, "#t-status"); got != "Status: Completed" {
			t.Errorf("status line %q", got)
		}
		if got := eval[string](t, b, `[...document.querySelectorAll("#timeline li")].map((li) => li.dataset.state).join()`); got != "done,done,done" {
			t.Errorf("timeline states %s, want every step done", got)
		}
		if got := b.text(t, "#outcome-title"); !strings.Contains(got, "Completed") {
			t.Errorf("outcome %q", got)
		}
		completedID = b.text(t, "#t-id")

		// What the page sent: minor units, the currency, the item.
		var page struct {
			Orders []struct {
				OrderID  string `json:"order_id"`
				Amount   int64  `json:"amount"`
				Currency string `json:"currency"`
				Items    []struct {
					SKU      string `json:"sku"`
					Quantity int    `json:"quantity"`
				} `json:"items"`
			} `json:"orders"`
		}
		call(t, "GET", in.api+"/orders", login(t, in.api, "ada"), nil, &page)
		if len(page.Orders) != 1 {
			t.Fatalf("ada has %d orders, want 1", len(page.Orders))
		}
		o := page.Orders[0]
		if o.OrderID != completedID || o.Amount != 1250 || o.Currency != "USD" || len(o.Items) != 1 || o.Items[0].SKU != "widget" || o.Items[0].Quantity != 2 {
			t.Errorf("the API got %+v, want order %s of 1250 USD with 2 widget", o, completedID)
		}
		// The order stayed PROCESSING for 3 s, which polling asks about
		// at least 3 times: by server-sent events the page made one
		// request of the status URL, the stream (a second if the stream
		// was cut and the EventSource reconnected), and no fetch of it.
		if got := statusRequests(t, in.api) - before; got < 1 || got > 2 {
			t.Errorf("the page asked the status URL %v times for one order, want 1 (the event stream)", got)
		}
		if n := eval[int](t, b, `performance.getEntriesByType("resource").filter((e) => e.initiatorType === "fetch" && e.name.includes("/status?")).length`); n != 0 {
			t.Errorf("the page polled the status URL %d times, want it followed by server-sent events only", n)
		}
		b.do(t, chromedp.WaitVisible(css(`#recent .order-row[data-id="`+completedID+`"] .badge[data-status="COMPLETED"]`)))
	})

	t.Run("an order the fraud rules reject shows the reason", func(t *testing.T) {
		b.do(t,
			chromedp.Click(css("#items .item-remove")),
			retype("#amount", "5,000.00"),
			chromedp.Click(css("#place-order")),
			chromedp.WaitVisible(css(`#t-status[data-status="REJECTED"]`)),
		)
		if got := b.text(t, "#outcome-title"); !strings.Contains(got, "fraud checks") {
			t.Errorf("outcome %q does not say the fraud checks rejected it", got)
		}
		if got := b.text(t, "#outcome-detail"); !strings.Contains(got, "fraud score") {
			t.Errorf("detail %q lacks the reason", got)
		}
		if got := eval[string](t, b, `document.querySelector('#timeline li[data-step="FINAL"]').dataset.outcome`); got != "rejected" {
			t.Errorf("final step outcome %q, want rejected", got)
		}
		b.shot(t, "order-rejected", true)
	})

	t.Run("an order from the recent list opens in the tracker", func(t *testing.T) {
		row := `#recent .order-row[data-id="` + completedID + `"]`
		b.do(t,
			chromedp.WaitVisible(css(`#recent .badge[data-status="REJECTED"]`)),
			chromedp.Click(css(row)),
			chromedp.WaitVisible(css(`#t-status[data-status="COMPLETED"]`)),
		)
		if got := b.text(t, "#t-id"); got != completedID {
			t.Errorf("tracker shows %s, want %s", got, completedID)
		}
		if got := eval[string](t, b, `document.querySelector('`+row+`').getAttribute("aria-current")`); got != "true" {
			t.Errorf("the opened row is not marked current (aria-current=%q)", got)
		}
		png := b.shot(t, "order-page", true)
		if *updateScreenshot && png != nil {
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshot.png"), png, 0o644); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("too many orders show how long to wait", func(t *testing.T) {
		b.do(t,
			retype("#amount", "1"),
			chromedp.Click(css("#place-order")),
			chromedp.WaitVisible(css(`#message[data-kind="error"]`)),
		)
		got := b.text(t, "#message")
		if !regexp.MustCompile(`^Too many orders in a short time\. You can try again in \d+ seconds?\.$`).MatchString(got) {
			t.Errorf("message %q, want the wait in seconds", got)
		}
		if role := eval[string](t, b, `document.querySelector("#message").getAttribute("aria-live")`); role != "polite" {
			t.Errorf("the message region is not live (aria-live=%q)", role)
		}
		b.shot(t, "rate-limited", true)
	})

	t.Run("a rejected token sends the person back to log in", func(t *testing.T) {
		b.checkHealthy(t, in.api) // before the reload starts a new document
		eval[bool](t, b, `(() => {
			const s = JSON.parse(sessionStorage.getItem("orderflow.session"));
			s.token = "eyJhbGciOiJIUzI1NiJ9.e30.forged";
			sessionStorage.setItem("orderflow.session", JSON.stringify(s));
			return true;
		})()`)
		b.do(t, chromedp.Reload(), chromedp.WaitVisible(css("#user-id")))
		if got := b.text(t, "#message"); !strings.Contains(got, "Please log in again") {
			t.Errorf("message %q, want to log in again", got)
		}
		if eval[bool](t, b, `sessionStorage.getItem("orderflow.session") !== null`) {
			t.Error("the rejected token is still stored")
		}
		if !eval[bool](t, b, `document.querySelector("#app-view").hidden`) {
			t.Error("the order view is still shown")
		}
		b.shot(t, "session-expired", true)
		b.checkHealthy(t, in.api)
	})
}

// placeOnPage opens the page of in, logs in as user and places an order
// of amount, until the page shows it PROCESSING.
func placeOnPage(in *instance, user, amount string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(in.api+"/"),
		chromedp.WaitVisible(css("#user-id")),
		chromedp.SendKeys(css("#user-id"), user+kb.Enter),
		chromedp.WaitVisible(css("#amount")),
		chromedp.SendKeys(css("#amount"), amount),
		chromedp.Click(css("#place-order")),
		chromedp.WaitVisible(css(`#t-status[data-status="PROCESSING"]`)),
	)
}

// testCancelButton: the Cancel button shows while the order can still be
// cancelled, cancels it through the API, and goes once the order is
// CANCELLED, which the page says. The gateway's latency (3 s) holds the
// order in the payment stage while the button is pressed.
func testCancelButton(t *testing.T, browser context.Context, in *instance) {
	b := newTab(t, browser, "cancel", 50*time.Second)
	b.do(t, placeOnPage(in, "cy", "7.50"), chromedp.WaitVisible(css("#cancel-order")))
	id := b.text(t, "#t-id")
	b.do(t,
		chromedp.Click(css("#cancel-order")),
		chromedp.WaitVisible(css(`#t-status[data-status="CANCELLED"]`)),
	)
	if got := b.text(t, "#t-status"); got != "Status: Cancelled" {
		t.Errorf("status line %q", got)
	}
	if got := b.text(t, "#outcome-title"); !strings.HasPrefix(got, "Cancelled") {
		t.Errorf("outcome %q, want it to say the order is cancelled", got)
	}
	if eval[bool](t, b, `!document.querySelector("#cancel-order").hidden`) {
		t.Error("the Cancel button is still shown on a CANCELLED order")
	}
	var doc statusDoc
	call(t, "GET", in.api+"/orders/"+id, login(t, in.api, "cy"), nil, &doc)
	if doc.Status != "CANCELLED" || doc.Cancellation == nil || doc.Cancellation.RequestedBy != "cy" {
		t.Errorf("the API has %s %+v, want CANCELLED at cy's request", doc.Status, doc.Cancellation)
	}
	b.do(t, chromedp.WaitVisible(css(`#recent .order-row[data-id="`+id+`"] .badge[data-status="CANCELLED"]`)))
	b.shot(t, "order-cancelled", true)
	b.checkHealthy(t, in.api)
}

// testPollingFallback: the user's held status requests are at their cap
// (long-polls of a finished order, which never return early), so the
// page's event stream is refused with a 429; the page follows the order
// by polling to COMPLETED. It has a server of its own, whose status
// requests the other tests do not count.
func testPollingFallback(t *testing.T, browser context.Context) {
	in := startRun(t, testEnv(t, map[string]string{"ORDERFLOW_PAYMENT_LATENCY": "3s"}))
	done := placeOrder(t, in.api, "pat")
	pollUntilTerminal(t, done.StatusURL, 30*time.Second)
	etag := statusGet(t, done.StatusURL).Header.Get("ETag")
	ctx, release := context.WithCancel(context.Background())
	var held sync.WaitGroup
	t.Cleanup(func() { release(); held.Wait() })
	for range httpapi.DefaultMaxStreamsPerUser {
		held.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, done.StatusURL, nil)
			req.Header.Set("If-None-Match", etag)
			req.Header.Set("Prefer", "wait=60")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	// Every held request is in before the stream is asked for: a stream
	// takes a place while it lasts, and a held request arriving then was
	// refused and never came back, leaving the cap out of reach (a loaded
	// CI run probed for 30 s). A generous deadline: on a machine busy with
	// the rest of the suite and a browser, the held requests take their
	// time to arrive.
	waitForMetrics(t, in.api+"/metrics", 30*time.Second, "\nstatus_streams "+strconv.Itoa(httpapi.DefaultMaxStreamsPerUser)+"\n")
	resp := statusGet(t, done.StatusURL, "Accept", "text/event-stream")
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a stream beyond pat's %d held requests: %d, want 429", httpapi.DefaultMaxStreamsPerUser, resp.StatusCode)
	}

	b := newTab(t, browser, "polling", 50*time.Second)
	b.do(t, placeOnPage(in, "pat", "4.20"), chromedp.WaitVisible(css(`#t-status[data-status="COMPLETED"]`)))
	if n := eval[int](t, b, `performance.getEntriesByType("resource").filter((e) => e.initiatorType === "fetch" && e.name.includes("/status?")).length`); n < 2 {
		t.Errorf("the page fetched the status URL %d times, want it polled (at least twice: PROCESSING for 3 s, then COMPLETED)", n)
	}
	if got := b.text(t, "#t-poll"); got != "This is the final status." {
		t.Errorf("hint %q", got)
	}
	// Two streams refused: the probe above, and the page's EventSource.
	waitForMetrics(t, in.api+"/metrics", 5*time.Second, `status_streams_rejected_total{limit="user"} 2`)
	b.checkHealthy(t, in.api)
}

func testPhoneKeyboard(t *testing.T, browser context.Context, in *instance) {
	b := newTab(t, browser, "phone", 50*time.Second)
	focused := func() string {
		return eval[string](t, b, `document.activeElement.id || document.activeElement.className`)
	}
	b.do(t,
		chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(in.api+"/"),
		chromedp.WaitVisible(css("#user-id")),
	)
	// Nothing below clicks: keys go to whatever has the focus.
	if got := focused(); got != "user-id" {
		t.Fatalf("focus on load is on %q, want the user id", got)
	}
	b.do(t, chromedp.KeyEvent("kim"+kb.Enter), chromedp.WaitVisible(css("#amount")))
	if got := focused(); got != "amount" {
		t.Fatalf("focus after login is on %q, want the amount", got)
	}
	b.do(t, chromedp.KeyEvent("25"+kb.Tab+kb.Tab))
	if got := focused(); got != "add-item" {
		t.Fatalf("two tabs after the amount reach %q, want the Add item button", got)
	}
	b.do(t, chromedp.KeyEvent(kb.Enter))
	if got := focused(); !strings.HasSuffix(got, "-sku") {
		t.Fatalf("Add item focused %q, want the new SKU field", got)
	}
	b.do(t, chromedp.KeyEvent("gadget"+kb.Enter), chromedp.WaitVisible(css(`#t-status[data-status="COMPLETED"]`)))

	if got := eval[int](t, b, `document.documentElement.scrollWidth - window.innerWidth`); got > 0 {
		t.Errorf("the page is %d px wider than a 360 px screen", got)
	}
	unlabelled := eval[[]string](t, b, `[...document.querySelectorAll("main input, main select, main button")]
		.filter((e) => e.offsetParent !== null && !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
		.map((e) => e.id || e.className)`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v", unlabelled)
	}
	b.shot(t, "phone", true)
	b.checkHealthy(t, in.api)
}

func testPasswordLogin(t *testing.T, browser context.Context) {
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("grace:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startRun(t, testEnv(t, map[string]string{"ORDERFLOW_DEV_LOGIN": "false", "ORDERFLOW_USERS_FILE": users}), "api")
	b := newTab(t, browser, "password", 30*time.Second)
	focused := func() string { return eval[string](t, b, `document.activeElement.id`) }
	b.do(t, chromedp.Navigate(in.api+"/"), chromedp.WaitVisible(css("#user-id")))

	// Identifier first: the server's 401 to a login without password
	// reveals the password field.
	b.do(t, chromedp.KeyEvent("grace"+kb.Enter), chromedp.WaitVisible(css("#password")))
	if got := b.text(t, "#message"); !strings.Contains(got, "needs a password") {
		t.Errorf("message %q, want to be asked for a password", got)
	}
	if got := focused(); got != "password" {
		t.Fatalf("focus is on %q, want the password", got)
	}
	b.do(t, chromedp.KeyEvent("wrong"+kb.Enter), chromedp.WaitVisible(css(`#message[data-kind="error"]`)))
	if got := b.text(t, "#message"); got != "Unknown user id or wrong password." {
		t.Errorf("message %q after a wrong password", got)
	}
	b.do(t, retype("#password", "correct horse"+kb.Enter), chromedp.WaitVisible(css("#amount")))
	if got := b.text(t, "#session-user"); got != "grace" {
		t.Errorf("signed in as %q, want grace", got)
	}
	if eval[bool](t, b, `JSON.stringify(sessionStorage).includes("correct horse")`) {
		t.Error("the password was stored")
	}

	// A rule only the server checks: the API's 422 names the field, and
	// the page marks that field and says what is wrong with it.
	b.do(t,
		chromedp.SendKeys(css("#amount"), "10"),
		chromedp.Click(css("#add-item")),
		chromedp.SendKeys(css("#items li:nth-child(1) .item-sku"), "widget"),
		chromedp.Click(css("#add-item")),
		chromedp.SendKeys(css("#items li:nth-child(2) .item-sku"), "widget"),
		chromedp.Click(css("#place-order")),
		chromedp.WaitVisible(css(`#message[data-kind="error"]`)),
	)
	want := `Please check the SKU of item 2: "widget" appears twice; put the total in one line.`
	if got := b.text(t, "#message"); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got := eval[string](t, b, `document.activeElement.matches("#items li:nth-child(2) .item-sku[aria-invalid=true]") + " " + document.querySelector("#items li:nth-child(2) .item-error").textContent`); got != "true "+want {
		t.Errorf("the second SKU is not marked and focused with the reason: %q", got)
	}
	b.shot(t, "validation", true)

	// The rules the page checks itself come from the API's OpenAPI
	// document: it refuses these before sending anything.
	b.do(t,
		retype("#items li:nth-child(1) .item-qty", "1001"),
		retype("#items li:nth-child(2) .item-sku", "a/b"),
		chromedp.Click(css("#place-order")),
		chromedp.WaitVisible(css(`#message[data-kind="error"]`)),
	)
	if got := b.text(t, "#message"); got != "Please fix the highlighted fields." {
		t.Errorf("message %q, want the page's own check of the highlighted fields", got)
	}
	if got := b.text(t, "#items li:nth-child(1) .item-error"); got != "Item 1: the quantity is a whole number from 1 to 1000." {
		t.Errorf("item 1's error %q, want the API's quantity limits", got)
	}
	if got := eval[string](t, b, `document.querySelector("#items li:nth-child(2) .item-sku").maxLength + " " + document.querySelector("#items li:nth-child(1) .item-qty").max`); got != "64 1000" {
		t.Errorf("the inputs' limits are %q, want the API's \"64 1000\"", got)
	}
	b.checkHealthy(t, in.api)
}
