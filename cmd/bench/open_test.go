package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func TestConstantScheduleSpacesTheArrivalsEvenly(t *testing.T) {
	sched, err := schedule("constant", 200, 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sched) != 400 {
		t.Fatalf("%d arrivals at 200/s for 2 s, want 400", len(sched))
	}
	for i, at := range sched {
		if want := time.Duration(i) * 5 * time.Millisecond; at != want {
			t.Fatalf("arrival %d at %s, want %s", i, at, want)
		}
	}
	if _, err := schedule("bursty", 1, time.Second, nil); err == nil {
		t.Error("an unknown kind of arrivals gave a schedule")
	}
}

// Poisson arrivals at rate λ: about λ·d of them, gaps of mean 1/λ and of
// a standard deviation equal to their mean (exponential), in order and
// within the phase. The seed is fixed: the bounds are five standard
// errors wide and the test gives the same answer every run.
func TestPoissonScheduleHasTheRateAndExponentialGaps(t *testing.T) {
	const rate, secs = 1000.0, 100
	sched, err := schedule("poisson", rate, secs*time.Second, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	n := float64(len(sched))
	if want := rate * secs; math.Abs(n-want) > 5*math.Sqrt(want) {
		t.Errorf("%v arrivals, want %v ± %.0f", n, want, 5*math.Sqrt(want))
	}
	var sum, sumSq float64
	prev := time.Duration(0)
	for i, at := range sched {
		if at < prev || at >= secs*time.Second {
			t.Fatalf("arrival %d at %s: out of order or outside the phase", i, at)
		}
		gap := (at - prev).Seconds()
		sum, sumSq, prev = sum+gap, sumSq+gap*gap, at
	}
	mean := sum / n
	sd := math.Sqrt(sumSq/n - mean*mean)
	if math.Abs(mean-1/rate) > 5*(1/rate)/math.Sqrt(n) {
		t.Errorf("mean gap %.6f s, want %.6f", mean, 1/rate)
	}
	if cv := sd / mean; math.Abs(cv-1) > 0.03 {
		t.Errorf("gaps' coefficient of variation %.3f, want 1 (exponential gaps)", cv)
	}
}

// fakeClock is a test's time: it moves only when a sleeper's time comes
// or a request takes time, so a test of latencies has no timing in it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(t time.Time) { c.advanceTo(t) }

func (c *fakeClock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A server that stalls for a second on the first of ten orders sent at
// 10/s over one connection: the other nine wait for the connection and go
// out at once when it answers. Counted from their intended times their
// ack latencies are 900, 800, … 100 ms, and their end-to-end latencies
// 10 ms more; counted from when they went out (the coordinated omission)
// they would be 0 and 10 ms.
func TestLatencyCountsFromTheIntendedSendTime(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: start}
	sched, _ := schedule("constant", 10, time.Second, nil)
	shots := fire(sched, start, 1, 3, clk, func(n, _ int) (int, orderflow.OrderID, error) {
		if n == 0 {
			clk.advance(time.Second)
		}
		return http.StatusAccepted, orderflow.OrderID(fmt.Sprint("order-", n)), nil
	})
	finals := map[orderflow.OrderID]final{}
	for i, s := range shots {
		if want := start.Add(time.Duration(i) * 100 * time.Millisecond); !s.Intended.Equal(want) {
			t.Fatalf("shot %d intended at %s, want %s", i, s.Intended, want)
		}
		if s.User != i%3 {
			t.Errorf("shot %d by user %d, want %d", i, s.User, i%3)
		}
		finals[s.ID] = final{orderflow.StatusCompleted, s.Answered.Add(10 * time.Millisecond)}
	}
	for i, s := range shots {
		if want := time.Second - time.Duration(i)*100*time.Millisecond; s.ack() != want {
			t.Errorf("shot %d: ack latency %s, want %s", i, s.ack(), want)
		}
	}
	f := phaseFigures("stall", 10, start, time.Second, shots, finals, 100*time.Millisecond)
	// Sorted: 100 … 1000 ms; p50 is the fifth, p99 the ninth.
	if f.Ack.P50 != 500 || f.Ack.P99 != 900 || f.Ack.P999 != 900 {
		t.Errorf("ack p50/p99/p999 %v, want 500/900/900 ms", f.Ack)
	}
	if f.EndToEnd.P50 != 510 || f.EndToEnd.P99 != 910 {
		t.Errorf("end-to-end p50/p99 %v, want 510/910 ms", f.EndToEnd)
	}
	if f.SendLagP99Ms != 800 {
		t.Errorf("send lag p99 %v ms, want 800", f.SendLagP99Ms)
	}
	if f.Sustained {
		t.Error("a second's stall passed for sustained")
	}
}

// Every shot of a schedule is sent once, over all the connections, and
// each answer lands on its own shot.
func TestFireSendsEachShotOnce(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sched, _ := schedule("constant", 1000, time.Second, nil)
	var mu sync.Mutex
	sent := map[int]int{}
	shots := fire(sched, start, 16, 7, &fakeClock{now: start}, func(n, _ int) (int, orderflow.OrderID, error) {
		mu.Lock()
		sent[n]++
		mu.Unlock()
		if n%10 == 0 {
			return http.StatusServiceUnavailable, "", nil
		}
		return http.StatusAccepted, orderflow.OrderID(fmt.Sprint(n)), nil
	})
	if len(sent) != 1000 {
		t.Fatalf("%d distinct shots sent, want 1000", len(sent))
	}
	for n, s := range shots {
		if sent[n] != 1 {
			t.Errorf("shot %d sent %d times", n, sent[n])
		}
		if (n%10 == 0) != (s.Status == http.StatusServiceUnavailable) || (s.Status == http.StatusAccepted && s.ID != orderflow.OrderID(fmt.Sprint(n))) {
			t.Errorf("shot %d: status %d id %q", n, s.Status, s.ID)
		}
	}
}

// steadyPhase is a synthetic phase of rate orders/s for d, every order
// accepted and final after e2e(i) (i the order's index).
func steadyPhase(rate float64, d time.Duration, e2e func(i int) time.Duration) (time.Time, []shot, map[orderflow.OrderID]final) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sched, _ := schedule("constant", rate, d, nil)
	shots := make([]shot, len(sched))
	finals := map[orderflow.OrderID]final{}
	for i, at := range sched {
		id := orderflow.OrderID(fmt.Sprint(i))
		in := start.Add(at)
		shots[i] = shot{Intended: in, Sent: in, Answered: in.Add(time.Millisecond), Status: http.StatusAccepted, ID: id}
		finals[id] = final{orderflow.StatusCompleted, in.Add(e2e(i))}
	}
	return start, shots, finals
}

// The sweep's decision on synthetic phases: a sustained rate has every
// order accepted and final, an end-to-end p99 at or under the target,
// and no growing backlog; each way of failing is named.
func TestSustainedRule(t *testing.T) {
	const rate, d, target = 1000.0, 10 * time.Second, 100 * time.Millisecond
	n := int(rate * d.Seconds())
	tests := []struct {
		name   string
		e2e    func(i int) time.Duration
		change func(shots []shot, finals map[orderflow.OrderID]final)
		want   bool
		why    string
	}{
		{name: "a steady 20 ms is sustained", e2e: func(int) time.Duration { return 20 * time.Millisecond }, want: true},
		{name: "a p99 of exactly the target is sustained", e2e: func(i int) time.Duration {
			if i%100 == 0 {
				return time.Second // 1 %: above p99
			}
			return target
		}, want: true},
		{name: "a p99 over the target is not", e2e: func(i int) time.Duration {
			if i%50 == 0 {
				return time.Second // 2 %
			}
			return 10 * time.Millisecond
		}, why: "end-to-end p99 1000.0 ms > 100ms"},
		{name: "a 503 is not", e2e: func(int) time.Duration { return 10 * time.Millisecond },
			change: func(shots []shot, _ map[orderflow.OrderID]final) { shots[5].Status = http.StatusServiceUnavailable },
			why:    "1 of 10000 orders not answered 202 (map[202:9999 503:1])"},
		{name: "a request with no answer is not", e2e: func(int) time.Duration { return 10 * time.Millisecond },
			change: func(shots []shot, _ map[orderflow.OrderID]final) { shots[5].Status = 0 },
			why:    "1 of 10000 orders not answered 202 (map[202:9999 error:1])"},
		{name: "an accepted order never final is not", e2e: func(int) time.Duration { return 10 * time.Millisecond },
			change: func(_ []shot, finals map[orderflow.OrderID]final) {
				finals["7"] = final{orderflow.StatusProcessing, time.Time{}}
			},
			why: "1 accepted orders never reached a final state"},
		// The time in the system grows from 10 to 90 ms across the phase:
		// the p99 (89 ms) is under the target, but the backlog grows by
		// 40 orders from the second quarter to the last, more than the
		// 30 allowed (a quarter of the target at 1000/s, plus 5).
		{name: "a growing backlog under the target is not", e2e: func(i int) time.Duration {
			return 10*time.Millisecond + time.Duration(float64(80*time.Millisecond)*float64(i)/float64(n))
		}, why: "backlog growing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, shots, finals := steadyPhase(rate, d, tt.e2e)
			if tt.change != nil {
				tt.change(shots, finals)
			}
			f := phaseFigures("test", rate, start, d, shots, finals, target)
			if f.Sustained != tt.want || !strings.HasPrefix(f.Why, tt.why) {
				t.Errorf("sustained %v (%q), want %v (%q); p99 %.1f ms, backlog %.1f → %.1f (bound %.1f)", f.Sustained, f.Why, tt.want, tt.why,
					f.EndToEnd.P99, f.BacklogQ2, f.BacklogQ4, f.BacklogQ4Bound)
			}
		})
	}
}

// The orders in the system, by Little's law λ·W: 1000/s staying 20.5 ms
// are 20.5 in the system on average in every quarter; at the end (10 s)
// the 20 sent from 9.980 s on, and at most 21.
func TestPhaseFiguresCountTheOrdersInTheSystem(t *testing.T) {
	start, shots, finals := steadyPhase(1000, 10*time.Second, func(int) time.Duration { return 20500 * time.Microsecond })
	f := phaseFigures("test", 1000, start, 10*time.Second, shots, finals, 100*time.Millisecond)
	if math.Abs(f.BacklogQ2-20.5) > 0.01 || math.Abs(f.BacklogQ4-20.5) > 0.01 || f.InSystemAtEnd != 20 || f.InSystemMax != 21 {
		t.Errorf("backlog %.2f → %.2f, %d at the end, %d at most; want 20.5, 20.5, 20 and 21", f.BacklogQ2, f.BacklogQ4, f.InSystemAtEnd, f.InSystemMax)
	}
	if f.Accepted != 10000 || f.AcceptedPerSecond != 1000 || f.Final[orderflow.StatusCompleted] != 10000 || f.Lost != 0 {
		t.Errorf("accepted %d (%.0f/s), final %v, lost %d", f.Accepted, f.AcceptedPerSecond, f.Final, f.Lost)
	}
	// All but the 20 still in the system at the end completed in it.
	if f.CompletedPerSecond != 998 {
		t.Errorf("completed %.1f/s, want 998", f.CompletedPerSecond)
	}
}

// The sweep finds the highest passing rate to within the resolution it
// reports, and never one that failed: below the first guess by bisection
// alone, above it (up to the limit) after doubling past it.
func TestSweepFindsTheHighestPassingRate(t *testing.T) {
	const guess, limit = 5000.0, 30000.0
	for _, tt := range []struct {
		capacity   float64
		probes     int
		resolution float64
	}{
		{0, 7, guess / 64},
		{1, 7, guess / 64},
		{3000, 7, guess / 64},
		{4999, 7, guess / 64},
		{5000, 8, guess / 64},               // 5000 passes, 10000 fails
		{9000, 8, guess / 64},               // the bracket [5000, 10000]
		{12000, 9, 2 * guess / 64},          // [10000, 20000]
		{25000, 10, (limit - 4*guess) / 64}, // [20000, 30000 = the limit]
		{limit, 4, limit / 64},              // the limit passes: nothing above it to find
		{2 * limit, 4, limit / 64},          // ditto
	} {
		var probes []float64
		got, res, err := sweep(guess, limit, 6, func(rate float64) (bool, error) {
			probes = append(probes, rate)
			return rate <= tt.capacity, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(probes) != tt.probes || res != tt.resolution {
			t.Errorf("capacity %v: %d probes, resolution %v; want %d, %v (probes %v)", tt.capacity, len(probes), res, tt.probes, tt.resolution, probes)
		}
		if want := min(tt.capacity, limit); got > want || got < want-res {
			t.Errorf("capacity %v: found %v, want within %v below %v (probes %v)", tt.capacity, got, res, want, probes)
		}
	}
	if _, _, err := sweep(100, 1000, 3, func(float64) (bool, error) { return false, fmt.Errorf("server gone") }); err == nil {
		t.Error("a probe's error was not returned")
	}
	if _, _, err := sweep(100, 1000, 3, func(r float64) (bool, error) {
		if r > 100 {
			return false, fmt.Errorf("server gone")
		}
		return true, nil
	}); err == nil {
		t.Error("an error while doubling was not returned")
	}
}

// A rate fails the sweep only if a second phase fails it too; a pass or
// an error ends the probe at once.
func TestSecondChanceProbesAFailureAgain(t *testing.T) {
	for _, tt := range []struct {
		phases []bool
		want   bool
		ran    int
	}{
		{[]bool{true}, true, 1},
		{[]bool{false, true}, true, 2},
		{[]bool{false, false}, false, 2},
	} {
		ran := 0
		got, err := secondChance(func(float64) (bool, error) {
			ran++
			return tt.phases[ran-1], nil
		})(1000)
		if err != nil || got != tt.want || ran != tt.ran {
			t.Errorf("phases %v: %v after %d phases (%v), want %v after %d", tt.phases, got, ran, err, tt.want, tt.ran)
		}
	}
	ran := 0
	if _, err := secondChance(func(float64) (bool, error) { ran++; return false, fmt.Errorf("server gone") })(1000); err == nil || ran != 1 {
		t.Errorf("an error: %v after %d phases, want it after 1", err, ran)
	}
}

// The sweep's answer is measured again; while it does not hold, rates
// one and then three steps below it are tried, and none of them is a
// capacity unless its phase passed.
func TestConfirmStepsDownUntilARateHolds(t *testing.T) {
	for _, tt := range []struct {
		holds  float64 // the highest rate that passes a second time
		want   float64
		probes []float64
	}{
		{3000, 3000, []float64{3000}},
		{2990, 2950, []float64{3000, 2950}},
		{2900, 2850, []float64{3000, 2950, 2850}},
		{2800, 0, []float64{3000, 2950, 2850}},
	} {
		var probes []float64
		got, err := confirm(3000, 50, 3, func(rate float64) (bool, error) {
			probes = append(probes, rate)
			return rate <= tt.holds, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want || !slices.Equal(probes, tt.probes) {
			t.Errorf("a second phase holding up to %v: confirmed %v after probes %v, want %v after %v", tt.holds, got, probes, tt.want, tt.probes)
		}
	}
	if got, _ := confirm(40, 50, 3, func(float64) (bool, error) { return false, nil }); got != 0 {
		t.Errorf("stepping below 0/s confirmed %v, want 0", got)
	}
	if _, err := confirm(100, 10, 3, func(float64) (bool, error) { return false, fmt.Errorf("server gone") }); err == nil {
		t.Error("a probe's error was not returned")
	}
}

func openReport() *report {
	r := testReport()
	level := func(name string, frac, rate, p99 float64, sustained bool) openPhase {
		return openPhase{Name: name, OfCapacity: frac, OfferedPerSecond: rate, AcceptedPerSecond: rate, Sent: int(rate * 10), Accepted: int(rate * 10),
			Statuses: map[string]int{"202": int(rate * 10)}, Ack: percentiles{2, 20, 40}, EndToEnd: percentiles{8, p99, p99 * 2}, Sustained: sustained}
	}
	over := level("overload", 2, 5000, 900, false)
	over.Statuses = map[string]int{"202": 30000, "503": 20000}
	over.Accepted, over.AcceptedPerSecond = 30000, 3000
	r.Capacity = &Capacity{SustainedPerSecond: 2500, DurableCeilingPerSecond: 6000, CeilingPerSecond: 10000, AcceptedPerSecond: 3000, RatioToDurableCeiling: 2500.0 / 6000}
	r.Open = &openLoop{Arrivals: "poisson", Connections: 512, TargetP99Ms: 100, Steps: 2, Overload: 2,
		Sweep:         []openPhase{level("sweep 1", 0, 1500, 40, true), level("sweep 2", 0, 2250, 150, false)},
		Levels:        []openPhase{level("50 %", 0.5, 1250, 30, true), level("80 %", 0.8, 2000, 60, true), level("100 %", 1, 2500, 95, true)},
		OverloadPhase: &over}
	return r
}

// -open's JSON carries the headline figures at the top level under the
// names the issue fixed, and the phases behind them under open_loop; a
// closed-loop report carries none of them.
func TestOpenReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := openReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]float64{"sustained_capacity_per_s": 2500, "durable_ceiling_per_s": 6000, "ceiling_per_s": 10000, "accepted_per_s": 3000} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	ol, _ := got["open_loop"].(map[string]any)
	levels, _ := ol["levels"].([]any)
	over, _ := ol["overload"].(map[string]any)
	if len(levels) != 3 || over == nil {
		t.Fatalf("open_loop %v", ol)
	}
	if l := levels[2].(map[string]any); l["of_capacity"] != 1.0 || l["end_to_end_ms"].(map[string]any)["p999"] != 190.0 || l["ack_ms"].(map[string]any)["p99"] != 20.0 {
		t.Errorf("100 %% level %v", l)
	}
	if st := over["statuses"].(map[string]any); st["503"] != 20000.0 || over["accepted_per_second"] != 3000.0 || over["lost"] != 0.0 {
		t.Errorf("overload %v", over)
	}

	b.Reset()
	if err := testReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"sustained_capacity_per_s", "open_loop"} {
		if strings.Contains(b.String(), key) {
			t.Errorf("a closed-loop report has %s", key)
		}
	}
}

// The open-loop plot shows the capacity against the ceilings and the
// latencies against the offered rate, also when drawn from the JSON of an
// earlier run (-from).
func TestPlotOpenReport(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "open.json")
	var b bytes.Buffer
	if err := openReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(from, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "open.svg")
	if err := replot(from, path); err != nil {
		t.Fatal(err)
	}
	all := svgTexts(t, path)
	for _, want := range []string{"sustained capacity", "durable ceiling", "closed loop", "2500", "6000", "10000", "end to end p99", "end to end p999", "ack p99", "target", "not sustained", "offered orders/s"} {
		if !strings.Contains(all, want) {
			t.Errorf("the plot does not show %q (its texts: %q)", want, all)
		}
	}
	r := openReport()
	r.Open.Sweep = nil
	if err := plotReport(r, path); err == nil {
		t.Error("an open-loop report without a sweep plotted")
	}
}

func TestCheckOpenRefusesBadFlags(t *testing.T) {
	good := options{open: true, arrivals: "poisson", conns: 512, steps: 6, overload: 2, target: 100 * time.Millisecond}
	if err := good.checkOpen(); err != nil {
		t.Fatalf("good flags: %v", err)
	}
	for name, change := range map[string]func(*options){
		"-arrivals bursty": func(o *options) { o.arrivals = "bursty" },
		"-conns 0":         func(o *options) { o.conns = 0 },
		"-overload 0":      func(o *options) { o.overload = 0 },
		"-follow":          func(o *options) { o.follow = true },
		"-rate with -plot": func(o *options) { o.rate, o.plot = 5000, "x.svg" },
	} {
		o := good
		change(&o)
		if err := o.checkOpen(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// The open loop's request: a 202 gives the order's id, a 503 of load
// shedding (or any other answer) its status and no error, so that the
// overload phase counts it; only a request with no answer is an error.
func TestSendReadsTheAnswer(t *testing.T) {
	var status int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-1" || r.URL.Path != "/orders" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		if status == http.StatusAccepted {
			w.WriteHeader(status)
			fmt.Fprint(w, `{"order_id":"ord_1","status":"PENDING","status_url":"http://x/orders/ord_1/status","expires_at":"2026-12-03T00:00:00Z"}`)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(status)
		fmt.Fprint(w, `{"type":"https://orderflow.dev/problems/overloaded","status":503}`)
	}))
	defer srv.Close()
	r := newOpenRun(options{conns: 4}, &served{api: srv.URL, tokens: []string{"token-0", "token-1"}})
	for _, tt := range []struct {
		status int
		id     orderflow.OrderID
	}{{http.StatusAccepted, "ord_1"}, {http.StatusServiceUnavailable, ""}, {http.StatusTooManyRequests, ""}} {
		status = tt.status
		got, id, err := r.send(0, 1)
		if err != nil || got != tt.status || id != tt.id {
			t.Errorf("answer %d: send returned %d %q %v, want %d %q", tt.status, got, id, err, tt.status, tt.id)
		}
	}
	srv.Close()
	if _, _, err := r.send(0, 1); err == nil {
		t.Error("a request to a stopped server returned no error")
	}
}

// The overload phase keeps to its bound when shedding holds the queue at
// ORDERFLOW_MAX_BACKLOG: an order then waits at most the bound over the
// rate the server completes orders, plus the target for itself.
func TestOverloadBound(t *testing.T) {
	for _, c := range []struct {
		name      string
		max, lost int
		p99       float64
		bound     float64
		within    bool
	}{
		{"within", 2000, 0, 700, 2000.0/3200*1000 + 100, true},
		{"p99 over the wait behind a full backlog", 2000, 0, 900, 2000.0/3200*1000 + 100, false},
		{"an accepted order lost", 2000, 1, 100, 2000.0/3200*1000 + 100, false},
		{"shedding off: no bound", 0, 0, 100, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// 3400 accepted/s, 2000 of them only to fill the queue: the
			// bound is the wait at the 3200/s the queue drained at.
			f := openPhase{AcceptedPerSecond: 3400, CompletedPerSecond: 3200, Lost: c.lost, EndToEnd: percentiles{P99: c.p99}}
			overloadBound(&f, c.max, 100*time.Millisecond)
			if f.MaxBacklog != c.max || math.Abs(f.EndToEndBoundMs-c.bound) > 1e-9 || f.WithinBound != c.within {
				t.Errorf("max %d, bound %.3f ms, within %v; want %d, %.3f, %v", f.MaxBacklog, f.EndToEndBoundMs, f.WithinBound, c.max, c.bound, c.within)
			}
		})
	}
}
