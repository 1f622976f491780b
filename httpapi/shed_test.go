package httpapi

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi/openapitest"
)

// queueCount is the fake queue count behind a real orderflow.Backlog.
type queueCount struct {
	n   atomic.Int64
	err atomic.Pointer[error]
}

func (q *queueCount) count(context.Context) (int, error) {
	if e := q.err.Load(); e != nil {
		return 0, *e
	}
	return int(q.n.Load()), nil
}

func (q *queueCount) fail(err error) { q.err.Store(&err) }

// newShedFixture is a fixture with ORDERFLOW_MAX_BACKLOG = max and a real
// orderflow.Backlog counting q every interval until the test ends. It
// returns once the first count is in.
func newShedFixture(t *testing.T, max int, interval time.Duration, q *queueCount) (*fixture, *orderflow.Backlog) {
	t.Helper()
	var b *orderflow.Backlog
	f := newFixture(t, func(c *Config, d *Deps) {
		b = orderflow.NewBacklog(q.count, interval, d.Logger)
		c.MaxBacklog = max
		d.Backlog = b
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if _, err := q.count(ctx); err == nil {
		waitBacklog(t, b, int(q.n.Load()))
	}
	return f, b
}

// waitBacklog waits until b's estimate is known and is want.
func waitBacklog(t *testing.T, b *orderflow.Backlog, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, known := b.Current()
		if known && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog is %d (known %v), want %d", n, known, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// metricLine returns the line of name in the /metrics page, or "".
func (f *fixture) metricLine(name string) string {
	f.t.Helper()
	rr := f.do(request("GET", "/metrics", ""))
	for _, l := range strings.Split(rr.Body.String(), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func TestOrdersAreShedWhenTheBacklogReachesTheBound(t *testing.T) {
	q := &queueCount{}
	q.n.Store(5)
	f, _ := newShedFixture(t, 5, time.Hour, q)
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 503 {
		t.Fatalf("status = %d, want 503; body %s", rr.Code, rr.Body)
	}
	p := problemOf(t, rr)
	if p.Type != problemTypeBase+"overloaded" {
		t.Errorf("type = %q, want %soverloaded", p.Type, problemTypeBase)
	}
	if got := rr.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if !strings.Contains(p.Detail, "backlog of 5 orders") || !strings.Contains(p.Detail, "bound 5") {
		t.Errorf("detail %q does not give the backlog and the bound", p.Detail)
	}
	if n := f.store.count(); n != 0 {
		t.Errorf("%d orders were written; a shed order must not be", n)
	}
	if got := f.metricLine("orders_shed_total"); got != "orders_shed_total 1" {
		t.Errorf("metric line %q, want orders_shed_total 1", got)
	}
	if got := f.metricLine("orders_accepted_total"); got != "orders_accepted_total 0" {
		t.Errorf("metric line %q, want orders_accepted_total 0", got)
	}
	for _, want := range []string{"order_backlog 5", "order_backlog_max 5"} {
		if got := f.metricLine(strings.Fields(want)[0]); got != want {
			t.Errorf("metric line %q, want %q", got, want)
		}
	}
}

// Between two counts, the orders this process accepted are added to the
// last count, so that a burst stops at the bound, not a whole interval's
// worth of orders past it.
func TestOrdersAcceptedSinceTheLastCountCountTowardsTheBound(t *testing.T) {
	q := &queueCount{}
	q.n.Store(3)
	f, b := newShedFixture(t, 5, time.Hour, q)
	for i := range 2 {
		if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
			t.Fatalf("order %d under the bound: status = %d, want 202; body %s", i+1, rr.Code, rr.Body)
		}
	}
	if n, _ := b.Current(); n != 5 {
		t.Errorf("backlog after 2 accepted = %d, want 5", n)
	}
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 503 {
		t.Fatalf("order at the bound: status = %d, want 503", rr.Code)
	}
	if n := f.store.count(); n != 2 {
		t.Errorf("%d orders written, want 2", n)
	}
}

// The backlog is counted again and again: once the processors have worked
// it off, orders are accepted again, and the line that said shedding had
// started is followed by one that says it stopped, once each.
func TestSheddingStopsWhenTheBacklogDrainsAndIsLoggedOnce(t *testing.T) {
	q := &queueCount{}
	q.n.Store(10)
	f, _ := newShedFixture(t, 5, time.Millisecond, q)
	for range 50 {
		if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 503 {
			t.Fatalf("status = %d, want 503", rr.Code)
		}
	}
	q.n.Store(0) // the processors worked the backlog off
	for deadline := time.Now().Add(10 * time.Second); ; {
		rr := f.postOrder("u123", `{"amount":1}`)
		if rr.Code == 202 {
			break
		}
		if rr.Code != 503 || time.Now().After(deadline) {
			t.Fatalf("after the backlog drained: status = %d, want 202 in time; body %s", rr.Code, rr.Body)
		}
		time.Sleep(time.Millisecond)
	}
	if strings.Contains(f.logs.String(), "stopped shedding") {
		t.Fatalf("stop line written before %s without a shed:\n%s", shedQuiet, f.logs)
	}
	f.clock.Advance(shedQuiet)
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
		t.Fatalf("status = %d, want 202", rr.Code)
	}
	started, stopped := 0, 0
	for _, rec := range f.logs.Records(t) {
		msg, _ := rec["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "shedding load"):
			started++
			if rec["level"] != "WARN" || rec["backlog"] != 10.0 || rec["max_backlog"] != 5.0 {
				t.Errorf("start line %v, want WARN with backlog 10 and max_backlog 5", rec)
			}
		case strings.HasPrefix(msg, "stopped shedding"):
			stopped++
			if shed, _ := rec["shed"].(float64); shed < 50 {
				t.Errorf("stop line %v, want shed >= 50", rec)
			}
		}
	}
	if started != 1 || stopped != 1 {
		t.Errorf("%d start and %d stop lines, want 1 and 1:\n%s", started, stopped, f.logs)
	}
}

// A steady overload alternates accepts and sheds at the bound: that is one
// shedding spell, not a pair of lines per accepted order.
func TestSheddingAtTheBoundDoesNotLogEveryAccept(t *testing.T) {
	q := &queueCount{}
	f, b := newShedFixture(t, 20, time.Hour, q)
	for range 20 {
		b.Admit(20) // writes of other orders fill the backlog up to the bound
	}
	for i := range 20 {
		if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 503 {
			t.Fatalf("status = %d, want 503", rr.Code)
		}
		b.Done(false) // one of them failed: room for the next
		if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
			t.Fatalf("round %d: status = %d, want 202", i, rr.Code)
		}
		f.clock.Advance(time.Millisecond)
	}
	if started, stopped := strings.Count(f.logs.String(), `"msg":"shedding load`), strings.Count(f.logs.String(), `"msg":"stopped shedding`); started != 1 || stopped != 0 {
		t.Errorf("%d start and %d stop lines, want 1 and 0 (one spell, still on):\n%s", started, stopped, f.logs)
	}
}

// The api sheds because its backlog is full, not because it is unwell:
// /ready stays 200, so that load balancers keep sending it the requests
// it can still answer.
func TestReadyStays200WhileShedding(t *testing.T) {
	q := &queueCount{}
	q.n.Store(100)
	f, _ := newShedFixture(t, 5, time.Hour, q)
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 503 {
		t.Fatalf("status = %d, want 503", rr.Code)
	}
	if rr := f.do(request("GET", "/ready", "")); rr.Code != 200 {
		t.Errorf("/ready while shedding: %d %s, want 200", rr.Code, rr.Body)
	}
}

// Shedding comes after validation: bad input still gets its 4xx.
func TestBadInputGetsItsErrorWhileShedding(t *testing.T) {
	q := &queueCount{}
	q.n.Store(100)
	f, _ := newShedFixture(t, 5, time.Hour, q)
	req := request("POST", "/orders", `{"ammount":1}`, "Content-Type", "application/json", "Authorization", "Bearer "+f.token("u123"))
	if rr := f.do(openapitest.Invalid(req)); rr.Code != 422 {
		t.Errorf("status = %d, want 422; body %s", rr.Code, rr.Body)
	}
}

// While shedding, a retry of an accepted order (same Idempotency-Key) is
// refused like new work (telling it apart would take the store read that
// shedding saves); once the backlog is under the bound, it gets the replay
// of the first 202 and no second order is made.
func TestIdempotentRetryWhileSheddingGetsItsReplayLater(t *testing.T) {
	q := &queueCount{}
	f, b := newShedFixture(t, 5, time.Hour, q)
	first := f.postOrder("u123", `{"amount":1}`, "Idempotency-Key", "k1")
	if first.Code != 202 {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	for range 4 {
		b.Admit(5) // other orders fill the backlog up to the bound
	}
	if rr := f.postOrder("u123", `{"amount":1}`, "Idempotency-Key", "k1"); rr.Code != 503 {
		t.Fatalf("retry while shedding: %d, want 503", rr.Code)
	}
	b.Done(false) // one of them failed
	retry := f.postOrder("u123", `{"amount":1}`, "Idempotency-Key", "k1")
	if retry.Code != 202 || retry.Header().Get("Idempotent-Replayed") != "true" || retry.Body.String() != first.Body.String() {
		t.Fatalf("retry under the bound: %d %q %s, want the replay of %s", retry.Code, retry.Header().Get("Idempotent-Replayed"), retry.Body, first.Body)
	}
	if n := f.store.count(); n != 1 {
		t.Errorf("%d orders made, want 1", n)
	}
	// The replay is no new work: it left the backlog as it found it.
	if n, _ := b.Current(); n != 4 {
		t.Errorf("backlog after the replay = %d, want 4", n)
	}
}

// A count that fails (the queue unreachable) sheds nothing: the write
// itself answers for a store that is down.
func TestUnknownBacklogShedsNothing(t *testing.T) {
	q := &queueCount{}
	q.n.Store(100)
	q.fail(orderflow.Unavailable(errors.New("dial tcp: refused"), "count messages"))
	f, b := newShedFixture(t, 5, time.Millisecond, q)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, known := b.Current(); !known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backlog still known after failing counts")
		}
		time.Sleep(time.Millisecond)
	}
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
		t.Errorf("status = %d, want 202; body %s", rr.Code, rr.Body)
	}
	if got := f.metricLine("order_backlog"); got != "" {
		t.Errorf("order_backlog exported while unknown: %q", got)
	}
}

func TestMaxBacklogZeroShedsNothing(t *testing.T) {
	q := &queueCount{}
	q.n.Store(1 << 20)
	f, _ := newShedFixture(t, 0, time.Hour, q)
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 202 {
		t.Errorf("status = %d, want 202; body %s", rr.Code, rr.Body)
	}
	if got := f.metricLine("order_backlog_max"); got != "order_backlog_max 0" {
		t.Errorf("metric line %q, want order_backlog_max 0", got)
	}
}
