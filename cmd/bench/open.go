package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
)

// The open-loop mode (-open) answers what a closed loop cannot: at which
// rate of arriving orders does one machine keep up? Orders arrive on a
// schedule fixed before the phase starts (constant or Poisson arrivals),
// whatever the server does, as a deployment's clients do; a closed loop
// instead waits for each answer before it sends again, so it slows down
// with the server and hides the backlog it builds.
//
// A phase at rate λ is sustained when all of these hold (sustainedRule):
//
//  1. every order sent was answered 202 (a 503 of load shedding, any other
//     status or a failed request means the server did not take the rate);
//  2. every accepted order reached a final state after the phase, while
//     the bench waited for the backlog to drain;
//  3. the end-to-end p99 (intended send time → the order's final state,
//     updated_at read back through GET /orders) of all the phase's
//     orders is at or under the target (-target, 100 ms);
//  4. the backlog does not grow: the mean number of orders in the system
//     (sent and not yet final) over the phase's last quarter is at most
//     that over its second quarter plus λ·target/4 + 5. By Little's law
//     the mean time in the system is that number over λ, so the rule lets
//     it grow by a quarter of the target from the one quarter to the
//     other (5 orders more for the randomness of small counts); a
//     processor that does not keep up with λ builds a backlog that grows
//     all through the phase, and shows here before its p99 reaches the
//     target. The first quarter is left out: it starts from an empty
//     system.
//
// The sweep looks for the highest sustained rate. It starts at the
// closed-loop accepted rate, which is only a guess at the ceiling: with
// load shedding on, the closed loop's 64 clients are accepted about as
// fast as the processor completes, and an open loop can be sustained
// above that. While a rate is sustained it doubles it (up to the durable
// ceiling, above which the api accepts nothing more), and then bisects
// between the highest rate sustained and the lowest not, -steps times,
// each probe a phase of -duration, with the backlog drained before the
// next. One phase's p99 rests on its slowest 1 % of orders, which a stall
// of a few hundred milliseconds (a checkpoint behind a slow fsync, the
// load generator descheduled on the shared cores) decides on its own, so
// a rate fails only when a second phase at it fails too (secondChance),
// and the rate the sweep found is measured again (confirm): the capacity
// is a rate that held twice, stepping down by the sweep's resolution,
// then twice that and so on, while the second phase does not hold
// (confirmTries phases at most); that phase is the 100 % level.
// Every latency counts from the intended send time, not from when a
// connection was free to send (fire): the correction for coordinated
// omission.

// checkOpen refuses -open's flags before anything is measured.
func (o options) checkOpen() error {
	switch {
	case o.follow:
		return errors.New("-open and -follow are two different measurements: choose one")
	case o.arrivals != "poisson" && o.arrivals != "constant":
		return fmt.Errorf("-arrivals %q: want poisson or constant", o.arrivals)
	case o.conns < 1 || o.steps < 1 || o.overload <= 0 || o.target <= 0:
		return errors.New("-conns and -steps must be at least 1, -overload and -target above 0")
	case o.rate > 0 && o.plot != "":
		return errors.New("-open -rate measures one phase; -plot draws a sweep: drop one")
	}
	return nil
}

// schedule returns the intended send times of a phase of rate orders/s
// lasting d, as offsets from its start: evenly spaced (constant), or with
// exponentially distributed gaps of mean 1/rate (poisson), drawn from rng.
func schedule(arrivals string, rate float64, d time.Duration, rng *rand.Rand) ([]time.Duration, error) {
	if rate <= 0 {
		return nil, nil
	}
	var out []time.Duration
	switch arrivals {
	case "constant":
		n := int(rate * d.Seconds())
		out = make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(math.Round(float64(i) * float64(time.Second) / rate))
		}
	case "poisson":
		out = make([]time.Duration, 0, int(rate*d.Seconds()*1.1)+16)
		for t := rng.ExpFloat64() / rate; t < d.Seconds(); t += rng.ExpFloat64() / rate {
			out = append(out, time.Duration(t*float64(time.Second)))
		}
	default:
		return nil, fmt.Errorf("-arrivals %q: want poisson or constant", arrivals)
	}
	return out, nil
}

// clock is the generator's time: the wall clock, or a test's.
type clock interface {
	Now() time.Time
	SleepUntil(t time.Time)
}

type wallClock struct{}

func (wallClock) Now() time.Time         { return time.Now() }
func (wallClock) SleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// shot is one request of an open-loop phase and what became of it.
type shot struct {
	Intended, Sent, Answered time.Time
	User                     int
	Status                   int // 0: no answer (the request failed)
	ID                       orderflow.OrderID
}

// ack is the shot's ack latency, from its intended send time: a request
// that waited for a free connection was late because the server was
// slow, and that wait is part of what its client sees.
func (s shot) ack() time.Duration { return s.Answered.Sub(s.Intended) }

// sender sends the request of shot n for user and returns the answer's
// status and, for a 202, the order's id.
type sender func(n, user int) (status int, id orderflow.OrderID, err error)

// fire sends one request at each intended time of sched (offsets from
// start) over conns connections at most in flight, and returns what
// became of each. When all connections are busy at a request's time it
// goes out as soon as one is free; its latency still counts from its
// intended time (shot.ack), so a stalled server is charged for every
// order that arrived while it stalled (coordinated omission).
func fire(sched []time.Duration, start time.Time, conns, users int, clk clock, send sender) []shot {
	shots := make([]shot, len(sched))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conns, len(sched)) {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= len(sched) {
					return
				}
				s := &shots[n]
				s.Intended = start.Add(sched[n])
				s.User = n % max(users, 1)
				clk.SleepUntil(s.Intended)
				s.Sent = clk.Now()
				status, id, err := send(n, s.User)
				s.Answered = clk.Now()
				if err == nil {
					s.Status, s.ID = status, id
				}
			}
		})
	}
	wg.Wait()
	return shots
}

// final is an order's final state as read back from the api.
type final struct {
	Status orderflow.Status
	At     time.Time // updated_at: when it reached Status (milliseconds)
}

// percentiles are latencies in milliseconds.
type percentiles struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

func percentilesOf(sorted []time.Duration) percentiles {
	return percentiles{ms(quantile(sorted, 0.50)), ms(quantile(sorted, 0.99)), ms(quantile(sorted, 0.999))}
}

// quantile is the q-quantile of sorted durations (the element at
// (n-1)·q, as pct), 0 if there are none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*q)].Round(10 * time.Microsecond)
}

// openPhase is the figures of one open-loop phase.
type openPhase struct {
	Name string `json:"name"` // sweep 1 … sweep N, 50 %, 80 %, 100 %, overload
	// OfCapacity is the rate as a fraction of the sustained capacity
	// (the levels and the overload phase).
	OfCapacity       float64 `json:"of_capacity,omitempty"`
	OfferedPerSecond float64 `json:"offered_per_second"`
	Seconds          float64 `json:"seconds"`
	Sent             int     `json:"sent"`
	// Accepted are the 202s; Statuses counts every answer by status, and
	// "error" the requests that got none.
	Accepted          int     `json:"accepted"`
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	// CompletedPerSecond is the phase's accepted orders that reached a
	// final state before its end, per second: the rate the server drained
	// the backlog at. Under an overload it is below AcceptedPerSecond,
	// which also counts the orders that filled the empty queue up to the
	// bound at the phase's start.
	CompletedPerSecond float64        `json:"completed_per_second"`
	Statuses           map[string]int `json:"statuses"`
	Ack                percentiles    `json:"ack_ms"`        // of the 202s
	EndToEnd           percentiles    `json:"end_to_end_ms"` // of the accepted orders that reached a final state
	// Final are the accepted orders in a final state once the backlog
	// drained, by state; Lost the accepted ones that were not.
	Final map[orderflow.Status]int `json:"final"`
	Lost  int                      `json:"lost"`
	// InSystemAtEnd is the orders sent and not yet final at the phase's
	// end, InSystemMax the most at any moment of it; BacklogQ2 and
	// BacklogQ4 the mean number over its second and last quarter, and
	// BacklogQ4Bound the most rule 4 allows the latter.
	InSystemAtEnd  int     `json:"in_system_at_end"`
	InSystemMax    int     `json:"in_system_max"`
	BacklogQ2      float64 `json:"backlog_mean_second_quarter"`
	BacklogQ4      float64 `json:"backlog_mean_last_quarter"`
	BacklogQ4Bound float64 `json:"backlog_mean_last_quarter_bound"`
	// SendLagP99Ms is how late the generator sent (sent − intended): far
	// above a millisecond, the connections or the generator's share of the
	// cores held the load back (the latencies still count from the
	// intended times).
	SendLagP99Ms float64 `json:"send_lag_p99_ms"`
	// The overload phase only: MaxBacklog is the server's
	// ORDERFLOW_MAX_BACKLOG (0: no shedding), and with shedding on
	// EndToEndBoundMs the most an accepted order should take: the wait
	// behind a full backlog at the rate the server completed orders
	// (MaxBacklog / CompletedPerSecond, Little's law for a queue held at
	// the bound) plus -target for its own processing. WithinBound says
	// whether the accepted orders' end-to-end p99 kept to it.
	MaxBacklog      int     `json:"max_backlog,omitempty"`
	EndToEndBoundMs float64 `json:"end_to_end_bound_ms,omitempty"`
	WithinBound     bool    `json:"within_bound,omitempty"`
	Sustained       bool    `json:"sustained"`
	Why             string  `json:"why,omitempty"` // why not sustained
}

// phaseFigures computes a phase's figures from its shots and the final
// states read back (by order id), and judges it with sustainedRule
// against target.
func phaseFigures(name string, rate float64, start time.Time, d time.Duration, shots []shot, finals map[orderflow.OrderID]final, target time.Duration) openPhase {
	f := openPhase{Name: name, OfferedPerSecond: rate, Seconds: d.Seconds(), Sent: len(shots),
		Statuses: map[string]int{}, Final: map[orderflow.Status]int{}}
	end := start.Add(d)
	var acks, e2e, lags []time.Duration
	type event struct {
		at    time.Time
		delta int
	}
	var events []event
	for _, s := range shots {
		lags = append(lags, s.Sent.Sub(s.Intended))
		if s.Status == 0 {
			f.Statuses["error"]++
			continue
		}
		f.Statuses[strconv.Itoa(s.Status)]++
		if s.Status != http.StatusAccepted {
			continue
		}
		f.Accepted++
		acks = append(acks, s.ack())
		events = append(events, event{s.Intended, +1})
		fin, ok := finals[s.ID]
		if !ok || !fin.Status.Terminal() {
			f.Lost++
			continue
		}
		f.Final[fin.Status]++
		e2e = append(e2e, max(fin.At.Sub(s.Intended), 0))
		events = append(events, event{fin.At, -1})
	}
	slices.Sort(acks)
	slices.Sort(e2e)
	slices.Sort(lags)
	f.AcceptedPerSecond = float64(f.Accepted) / d.Seconds()
	f.Ack, f.EndToEnd = percentilesOf(acks), percentilesOf(e2e)
	f.SendLagP99Ms = ms(quantile(lags, 0.99))
	// The orders in the system over the phase: +1 at each intended send
	// time, −1 at each final state (arrivals first at equal times).
	slices.SortFunc(events, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return b.delta - a.delta
	})
	q := d / 4
	var area [4]float64 // order-seconds in the system in each quarter
	in, prev := 0, start
	hold := func(until time.Time) { // in held from prev to until
		for i := range area {
			lo := later(prev, start.Add(time.Duration(i)*q))
			if hi := earlier(until, start.Add(time.Duration(i+1)*q)); hi.After(lo) {
				area[i] += float64(in) * hi.Sub(lo).Seconds()
			}
		}
		prev = until
	}
	for _, e := range events {
		if e.at.After(end) {
			break
		}
		hold(e.at)
		in += e.delta
		f.InSystemMax = max(f.InSystemMax, in)
	}
	hold(end)
	f.InSystemAtEnd = in
	f.CompletedPerSecond = float64(f.Accepted-in) / d.Seconds()
	f.BacklogQ2, f.BacklogQ4 = area[1]/q.Seconds(), area[3]/q.Seconds()
	f.BacklogQ4Bound = f.BacklogQ2 + rate*target.Seconds()/4 + 5
	f.Sustained, f.Why = sustainedRule(f, target)
	return f
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sustainedRule is the decision of the sweep (see the comment at the top
// of this file): whether a phase's figures show the rate sustained, and
// if not, why.
func sustainedRule(f openPhase, target time.Duration) (bool, string) {
	switch {
	case f.Sent == 0:
		return false, "no order was sent"
	case f.Accepted < f.Sent:
		return false, fmt.Sprintf("%d of %d orders not answered 202 (%v)", f.Sent-f.Accepted, f.Sent, f.Statuses)
	case f.Lost > 0:
		return false, fmt.Sprintf("%d accepted orders never reached a final state", f.Lost)
	case f.EndToEnd.P99 > ms(target):
		return false, fmt.Sprintf("end-to-end p99 %.1f ms > %s", f.EndToEnd.P99, target)
	case f.BacklogQ4 > f.BacklogQ4Bound:
		return false, fmt.Sprintf("backlog growing: %.1f orders in the system on average in the last quarter, %.1f in the second", f.BacklogQ4, f.BacklogQ2)
	}
	return true, ""
}

// sweep finds the highest rate, up to limit, at which probe passes. It
// brackets the answer first: it probes hi, a first guess at where the
// processor falls behind, and while a probe passes, twice the rate (up to
// limit: passing there ends the sweep, with the resolution steps halvings
// of limit would have had). Then it bisects the bracket [lo, hi] that
// holds the answer (lo = 0 while nothing passed) steps times, each probe
// halving it. It returns lo, the highest rate that passed, 0 if none did,
// and the bracket's final width: the answer is within it of lo.
func sweep(hi, limit float64, steps int, probe func(rate float64) (bool, error)) (rate, resolution float64, err error) {
	lo := 0.0
	hi = min(hi, limit)
	for {
		ok, err := probe(hi)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			break
		}
		if lo = hi; hi >= limit {
			return lo, limit / math.Pow(2, float64(steps)), nil
		}
		hi = min(2*hi, limit)
	}
	for range steps {
		mid := (lo + hi) / 2
		ok, err := probe(mid)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, hi - lo, nil
}

// secondChance is probe, run again when it fails: a rate fails the sweep
// only if two phases in a row fail it. One stall of a few hundred
// milliseconds fails a phase far below the capacity (a run's first phase,
// at 2,568/s, failed with a p99 of 233 ms and a backlog of 18 orders; the
// overload phase of the same run accepted 4,145/s), and a sweep takes
// every failure as an upper bound for good.
func secondChance(probe func(rate float64) (bool, error)) func(rate float64) (bool, error) {
	return func(rate float64) (bool, error) {
		ok, err := probe(rate)
		if err != nil || ok {
			return ok, err
		}
		return probe(rate)
	}
}

// confirm measures rate again with probe and, while it does not pass,
// rates below it, stepping down by step, then each time twice as far
// (tries probes at most): the highest rate found to pass, or 0 if
// none did (or the rates reached 0).
func confirm(rate, step float64, tries int, probe func(rate float64) (bool, error)) (float64, error) {
	for range tries {
		if rate <= 0 {
			return 0, nil
		}
		ok, err := probe(rate)
		if err != nil || ok {
			return rate, err
		}
		rate -= step
		step *= 2
	}
	return 0, nil
}

// confirmTries bounds the phases confirm runs: the sweep's answer, then
// one, three, seven and fifteen resolutions (the last step) below it. Near
// the capacity a phase fails or holds by chance (one stall decides), and
// a run in which the sweep's rate held once and three lower ones failed
// reported no capacity at all, though a rate a fifth lower had held
// earlier in the same sweep.
const confirmTries = 5

// openRun is orderflow running for the open-loop phases: where to send,
// as whom, and how.
type openRun struct {
	o      options
	s      *served
	client *http.Client
	phases int // phases run so far: each draws its own Poisson arrivals
}

func newOpenRun(o options, s *served) *openRun {
	tr := &http.Transport{MaxIdleConns: o.conns, MaxIdleConnsPerHost: o.conns, DisableCompression: true}
	return &openRun{o: o, s: s, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// send posts one order for user and reads its id from the 202.
func (r *openRun) send(_, user int) (int, orderflow.OrderID, error) {
	req, _ := http.NewRequest("POST", r.s.api+"/orders", bytes.NewReader([]byte(`{"amount":1250,"currency":"USD"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.s.tokens[user])
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, "", nil
	}
	var a httpapi.Accepted
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return 0, "", err
	}
	return resp.StatusCode, a.OrderID, nil
}

// phase offers rate orders/s for -duration, waits for the backlog to
// drain (up to 5 minutes), reads the orders' final states back and
// returns the phase's figures.
func (r *openRun) phase(name string, rate float64) (openPhase, error) {
	r.phases++
	sched, err := schedule(r.o.arrivals, rate, r.o.duration, rand.New(rand.NewPCG(1, uint64(r.phases))))
	if err != nil {
		return openPhase{}, err
	}
	before, err := processed(r.s.proc)
	if err != nil {
		return openPhase{}, err
	}
	steps.step(fmt.Sprintf("open loop %s: %.0f orders/s", name, rate), r.o.duration)
	start := time.Now().Add(10 * time.Millisecond)
	shots := fire(sched, start, r.o.conns, len(r.s.tokens), wallClock{}, r.send)
	steps.step(fmt.Sprintf("open loop %s: waiting for the backlog to drain", name), 0)
	defer steps.clear()
	accepted := 0
	for _, s := range shots {
		if s.Status == http.StatusAccepted {
			accepted++
		}
	}
	if _, err := waitProcessed(r.s.proc, before, float64(accepted)); err != nil {
		return openPhase{}, err
	}
	finals, err := readBack(r.client, r.s.api, r.s.tokens, shots)
	if err != nil {
		return openPhase{}, err
	}
	return phaseFigures(name, rate, start, r.o.duration, shots, finals, r.o.target), nil
}

// readBack reads the final states of the shots' accepted orders through
// GET /orders, each user's orders newest first, until all of that user's
// are found (the phase's orders are the newest: nothing else is sent
// meanwhile) or the list ends.
func readBack(client *http.Client, api string, tokens []string, shots []shot) (map[orderflow.OrderID]final, error) {
	wanted := make([]map[orderflow.OrderID]bool, len(tokens))
	for _, s := range shots {
		if s.Status == http.StatusAccepted {
			if wanted[s.User] == nil {
				wanted[s.User] = map[orderflow.OrderID]bool{}
			}
			wanted[s.User][s.ID] = true
		}
	}
	var mu sync.Mutex
	finals := map[orderflow.OrderID]final{}
	errs := make(chan error, len(tokens))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for u, ids := range wanted {
		if len(ids) == 0 {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cursor := ""
			for len(ids) > 0 {
				page, err := listPage(client, api, tokens[u], cursor)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, o := range page.Orders {
					if ids[o.OrderID] {
						delete(ids, o.OrderID)
						finals[o.OrderID] = final{o.Status, o.UpdatedAt}
					}
				}
				mu.Unlock()
				if page.NextCursor == nil {
					return
				}
				cursor = *page.NextCursor
			}
		})
	}
	wg.Wait()
	close(errs)
	return finals, <-errs
}

// listPage is one page of GET /orders.
func listPage(client *http.Client, api, token, cursor string) (httpapi.OrderPage, error) {
	var page httpapi.OrderPage
	u := api + "/orders?limit=100"
	if cursor != "" {
		u += "&cursor=" + url.QueryEscape(cursor)
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return page, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return page, fmt.Errorf("GET /orders: %s: %s", resp.Status, b)
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	return page, err
}

// measureOpen is -open: the ceilings, the closed-loop peak (the sweep's
// upper bound), the sweep for the sustained capacity, the capacity's
// 50, 80 and 100 %, and an overload phase at -overload times it.
func measureOpen(o options, dir, bin string) error {
	say("machine: %d cores; each phase %s; closed loop with %d workers, open loop: %s arrivals over up to %d connections\n\n",
		runtime.NumCPU(), o.duration, o.workers, o.arrivals, o.conns)
	if o.rate > 0 {
		return measureOpenAt(o, dir, bin)
	}
	bare, durable, s, p, err := measureUpToPeak(o, dir, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	hi := p.res.rate()
	if hi <= 0 {
		return errors.New("the closed-loop phase accepted no order: no rate to start the sweep at")
	}
	ol := &openLoop{Arrivals: o.arrivals, Connections: o.conns, TargetP99Ms: ms(o.target), Steps: o.steps, Overload: o.overload}
	rep.Open = ol
	r := newOpenRun(o, s)
	say("\nopen loop: the highest rate with every order accepted, end-to-end p99 ≤ %s and a bounded backlog: from the closed loop's %.0f/s, doubling while sustained (up to the durable ceiling), then %d bisection steps\n", o.target, hi, o.steps)
	capacity, resolution, err := sweep(hi, durable.rate(), o.steps, secondChance(func(rate float64) (bool, error) {
		f, err := r.phase(fmt.Sprintf("sweep %d", len(ol.Sweep)+1), rate)
		if err != nil {
			return false, err
		}
		ol.Sweep = append(ol.Sweep, f)
		printOpenPhase(f)
		return f.Sustained, nil
	}))
	if err != nil {
		return err
	}
	// The sweep's answer held once: measure it again (see confirm). The
	// phase that holds is the 100 % level; the others are probes.
	var full openPhase
	found, lowest := capacity, capacity // the sweep's answer, the lowest rate confirm tried
	if capacity > 0 {
		capacity, err = confirm(capacity, resolution, confirmTries, func(rate float64) (bool, error) {
			f, err := r.phase("100 %", rate)
			if err != nil {
				return false, err
			}
			lowest = rate
			if !f.Sustained {
				f.Name = fmt.Sprintf("confirm %d", len(ol.Sweep)+1)
				ol.Sweep = append(ol.Sweep, f)
				printOpenPhase(f)
				return false, nil
			}
			full = f
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	rep.Capacity = &Capacity{SustainedPerSecond: capacity, DurableCeilingPerSecond: durable.rate(), CeilingPerSecond: bare.rate(),
		AcceptedPerSecond: p.res.rate(), RatioToDurableCeiling: capacity / durable.rate()}
	switch {
	case capacity == 0 && found == 0:
		say("\nsustained capacity: none: no rate (down to %.1f/s) met the target in the sweep; try a longer -target\n", resolution)
		return nil
	case capacity == 0:
		say("\nsustained capacity: none confirmed: the sweep's %s/s held once, and a second phase at it and at every rate tried below it, down to %s/s, did not; "+
			"the machine's load varied during the run (compare the phases' lines): run it again on a quiet machine\n", perSecond(found), perSecond(lowest))
		return nil
	}
	say("\nsustained capacity:            %8s orders/s   (%.3f of the durable ceiling %.0f/s; ceiling %.0f/s; closed loop accepted %s/s)\n",
		perSecond(capacity), capacity/durable.rate(), durable.rate(), bare.rate(), perSecond(p.res.rate()))
	printLevelHeader()
	for _, frac := range []float64{0.5, 0.8} {
		f, err := r.phase(fmt.Sprintf("%.0f %%", frac*100), frac*capacity)
		if err != nil {
			return err
		}
		f.OfCapacity = frac
		ol.Levels = append(ol.Levels, f)
		printLevel(f)
	}
	full.OfCapacity = 1
	ol.Levels = append(ol.Levels, full)
	printLevel(full)
	f, err := r.phase("overload", o.overload*capacity)
	if err != nil {
		return err
	}
	f.OfCapacity = o.overload
	if err := r.judgeShedding(&f); err != nil {
		return err
	}
	ol.OverloadPhase = &f
	printLevel(f)
	say("overload (%.1f× the capacity): ", o.overload)
	printShedding(f, o.target)
	return nil
}

// measureOpenAt is -open -rate: one phase at that rate on a server of its
// own, with the answers and the overload bound as the overload phase
// prints them: what a given load gets, without the sweep.
func measureOpenAt(o options, dir, bin string) error {
	s, err := startServe(o, dir, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	ol := &openLoop{Arrivals: o.arrivals, Connections: o.conns, TargetP99Ms: ms(o.target)}
	rep.Open = ol
	r := newOpenRun(o, s)
	f, err := r.phase(fmt.Sprintf("at %s/s", perSecond(o.rate)), o.rate)
	if err != nil {
		return err
	}
	if err := r.judgeShedding(&f); err != nil {
		return err
	}
	ol.Levels = append(ol.Levels, f)
	printLevelHeader()
	printLevel(f)
	printShedding(f, o.target)
	return nil
}

// judgeShedding sets f's bound (overloadBound) from the server's
// ORDERFLOW_MAX_BACKLOG, read from its order_backlog_max.
func (r *openRun) judgeShedding(f *openPhase) error {
	page, err := scrape(r.s.api)
	if err != nil {
		return err
	}
	overloadBound(f, int(page.sum("order_backlog_max", nil)), r.o.target)
	return nil
}

// printLevelHeader prints the column heads of printLevel's lines.
func printLevelHeader() {
	say("%-9s %9s %9s   %-26s   %-26s\n", "", "offered/s", "accepted", "ack p50 / p99 / p999 ms", "end to end p50 / p99 / p999")
}

// printShedding prints what became of an open-loop phase's orders, and
// with load shedding on, its end-to-end p99 against the bound's wait.
func printShedding(f openPhase, target time.Duration) {
	say("%d offered, %s accepted/s; answers %v; accepted orders' end-to-end p99 %.1f ms; %d of %d accepted reached a final state (lost %d)\n",
		f.Sent, perSecond(f.AcceptedPerSecond), f.Statuses, f.EndToEnd.P99, f.Accepted-f.Lost, f.Accepted, f.Lost)
	if f.MaxBacklog == 0 {
		say("load shedding off (ORDERFLOW_MAX_BACKLOG=0): the backlog takes the excess\n")
		return
	}
	verdict := "OVER"
	if f.WithinBound {
		verdict = "within"
	}
	say("load shedding at a backlog of %d: the end-to-end p99 %.1f ms is %s the bound %.1f ms (%d / %s completed/s + %s)\n",
		f.MaxBacklog, f.EndToEnd.P99, verdict, f.EndToEndBoundMs, f.MaxBacklog, perSecond(f.CompletedPerSecond), target)
}

// overloadBound sets the overload phase's bound from the server's
// ORDERFLOW_MAX_BACKLOG max: with shedding on, a queue held at the bound
// and drained at the phase's completion rate makes an order wait about
// max / rate (Little's law), plus target for its own processing. An
// order that was lost, or a p99 over that, is outside the bound.
func overloadBound(f *openPhase, max int, target time.Duration) {
	f.MaxBacklog = max
	if max <= 0 || f.CompletedPerSecond <= 0 {
		return
	}
	f.EndToEndBoundMs = float64(max)/f.CompletedPerSecond*1000 + ms(target)
	f.WithinBound = f.Lost == 0 && f.EndToEnd.P99 <= f.EndToEndBoundMs
}

// perSecond formats a rate: whole orders from 100/s up, tenths below
// (the AWS mode on emulators runs at a few per second).
func perSecond(r float64) string {
	if r >= 100 {
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}

// printOpenPhase prints a sweep phase and its verdict.
func printOpenPhase(f openPhase) {
	verdict := "sustained"
	if !f.Sustained {
		verdict = "not sustained: " + f.Why
	}
	say("  %-8s %7s/s   ack p99 %7.1f ms   end to end p50 %7.1f  p99 %7.1f ms   backlog %.1f → %.1f (bound %.1f); %s\n",
		f.Name, perSecond(f.OfferedPerSecond), f.Ack.P99, f.EndToEnd.P50, f.EndToEnd.P99, f.BacklogQ2, f.BacklogQ4, f.BacklogQ4Bound, verdict)
}

// printLevel prints a row of the levels' table: a level measured again
// may miss the target that its sweep phase met (a busy machine), and
// says so.
func printLevel(f openPhase) {
	verdict := "sustained"
	if !f.Sustained {
		verdict = "not sustained: " + f.Why
	}
	if f.Name == "overload" {
		verdict = ""
	}
	say("%-9s %9s %9s   %7.1f / %7.1f / %7.1f    %7.1f / %7.1f / %7.1f   send lag p99 %.1f ms   %s\n", f.Name, perSecond(f.OfferedPerSecond), perSecond(f.AcceptedPerSecond),
		f.Ack.P50, f.Ack.P99, f.Ack.P999, f.EndToEnd.P50, f.EndToEnd.P99, f.EndToEnd.P999, f.SendLagP99Ms, verdict)
}
