// Command bench measures orderflow on this machine: it builds and starts
// the server as a child process, drives it with concurrent users over
// loopback for a fixed time, and prints accepted orders/s, ack latency,
// end-to-end completion rate and latency, and the server's peak RSS. In the
// same run and with the same load generator it measures a bare net/http
// handler that answers a fixed 202 (the ceiling), and prints the ratio.
// It also measures that handler answering only once the request body is
// appended to a file and fsynced, with one fsync for all the requests
// waiting (the durable ceiling): what this disk and these cores allow a
// durable 202 before any of orderflow's work. For each it prints the CPU
// time per request of the server and of the load generator.
//
// With -aws it runs orderflow in the AWS mode instead, SQS on ElasticMQ
// (or moto) and DynamoDB on moto_server, prints the AWS requests per
// completed order by service and operation, and sets the seed's own design
// beside it on the same servers (seed.go), with the price of a million
// orders at AWS list prices (cost.go).
//
// With -open it measures the sustained capacity instead (open.go): after
// the ceilings and the closed-loop peak, orders arrive at fixed rates
// (Poisson or constant arrivals, sent over up to -conns connections,
// every latency counted from the intended send time), and a sweep from
// the closed-loop rate (doubling while sustained, then bisecting) finds
// the highest rate at which every order is accepted, the end-to-end p99
// (202 → final state) stays within -target and the backlog does not
// grow, and a second phase at that rate confirms it (stepping down while
// it fails). It prints that rate and its
// ratio to the durable ceiling, the ack and end-to-end p50/p99/p999 at
// 50, 80 and 100 % of it, and an overload phase at -overload times it
// (accepted/s, 503s and other answers, whether every accepted order
// reached a final state). With -aws, the same against the AWS mode;
// with -rate, one open-loop phase at that rate instead of the sweep.
//
// With -follow it measures what following orders costs instead (follow.go):
// status requests and store reads per followed order, by polling and by
// server-sent events, in split mode or (with -aws) the AWS mode.
//
//	go run ./cmd/bench [-duration 10s] [-workers 64] [-users 200]
//	go run ./cmd/bench -open [-arrivals poisson|constant] [-conns 512] [-target 100ms] [-steps 6] [-overload 2] [-aws]
//	go run ./cmd/bench -aws [-sqs elasticmq|moto] [-baseline=false] [-rate 20]
//	go run ./cmd/bench -follow [-orders 100] [-latency 2s] [-aws [-sqs moto]]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/awstest"
	"github.com/orderflow/orderflow/sqlite"
)

func main() {
	if addr := os.Getenv("BENCH_CEILING_ADDR"); addr != "" {
		ceilingServer(addr, os.Getenv("BENCH_CEILING_JOURNAL"))
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// ceilingServer is the baseline: net/http answering a fixed 202. With a
// journal path it is the durable baseline: each request's body is appended
// to that file and the 202 waits until the append is fsynced.
func ceilingServer(addr, journalPath string) {
	var journal *groupLog
	if journalPath != "" {
		f, err := os.OpenFile(journalPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		journal = &groupLog{f: f, kick: make(chan struct{}, 1)}
		go journal.run()
	}
	body := []byte(`{"order_id":"0123456789abcdef0123456789abcdef","status":"PENDING"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err == nil && journal != nil {
			err = journal.append(b)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write(body)
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, h))
	os.Exit(1)
}

// groupLog is the least a durable 202 costs: an append to a file and an
// fsync, shared by every request waiting at that moment (group commit, as
// orderflow's SQLite writer does).
type groupLog struct {
	f       syncWriter
	kick    chan struct{}
	mu      sync.Mutex
	buf     []byte
	waiting []chan error
}

// syncWriter is what groupLog writes to: an *os.File.
type syncWriter interface {
	Write(b []byte) (int, error)
	Sync() error
}

// append adds b as a line and returns once it is fsynced.
func (g *groupLog) append(b []byte) error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.buf = append(append(g.buf, b...), '\n')
	g.waiting = append(g.waiting, done)
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default: // a round is due already
	}
	return <-done
}

// run writes and fsyncs what has accumulated, one round after another.
func (g *groupLog) run() {
	for range g.kick {
		g.mu.Lock()
		buf, waiting := g.buf, g.waiting
		g.buf, g.waiting = nil, nil
		g.mu.Unlock()
		if len(waiting) == 0 {
			continue
		}
		_, err := g.f.Write(buf)
		if err == nil {
			err = g.f.Sync()
		}
		for _, done := range waiting {
			done <- err
		}
	}
}

type options struct {
	duration time.Duration
	workers  int
	users    int
	keep     bool
	aws      bool
	sqs      string // the AWS mode's SQS: "elasticmq" or "moto"
	baseline bool   // the AWS mode: also measure the seed's design
	replica  string // the embedded mode: ORDERFLOW_REPLICA_URL of the server
	json     bool   // print the report as JSON on stdout
	plot     string // draw the report into this SVG file
	from     string // with plot: the JSON report to draw
	// -follow (follow.go): orders followed at once, and their payment
	// latency.
	follow  bool
	orders  int
	latency time.Duration
	// -open (open.go): arrivals on a schedule, the sweep for the
	// sustained capacity and its target, the overload phase.
	open     bool
	arrivals string
	conns    int
	target   time.Duration
	steps    int
	overload float64
	// maxBacklog is the server's ORDERFLOW_MAX_BACKLOG; negative is 0
	// (no shedding) for the closed loop, which measures how fast the api
	// accepts, and the server's default for -open, which measures what a
	// deployment's clients get.
	maxBacklog int
	// rate, if positive, holds the load of the orderflow phase to this
	// many requests/s instead of as many as the workers get answered.
	rate float64
}

func parseOptions() options {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured phase")
	flag.IntVar(&o.workers, "workers", 64, "concurrent client connections")
	flag.IntVar(&o.users, "users", 200, "distinct users (tokens) the load is spread over")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (database, logs)")
	flag.BoolVar(&o.aws, "aws", false, "run orderflow in the AWS mode (DynamoDB on a moto_server started for the run, SQS on -sqs) and print AWS requests and price per order")
	flag.StringVar(&o.sqs, "sqs", "elasticmq", "with -aws: SQS on an ElasticMQ started for the run (elasticmq), or on the moto_server (moto)")
	flag.BoolVar(&o.baseline, "baseline", true, "with -aws: also run the seed's design on the same servers at the same offered load, side by side")
	flag.BoolVar(&o.follow, "follow", false, "measure what following orders costs instead (split mode, or the AWS mode with -aws): polling against server-sent events")
	flag.IntVar(&o.orders, "orders", 100, "with -follow: orders followed at once")
	flag.DurationVar(&o.latency, "latency", 2*time.Second, "with -follow: payment latency, how long each order is followed")
	flag.BoolVar(&o.open, "open", false, "open loop: orders arrive at fixed rates; find the highest rate sustained (every order accepted, end-to-end p99 within -target, backlog bounded) and measure 50, 80 and 100 % of it and an overload")
	flag.StringVar(&o.arrivals, "arrivals", "poisson", "with -open: the arrivals' schedule, poisson or constant")
	flag.IntVar(&o.conns, "conns", 512, "with -open: client connections the arrivals are sent over (at most this many requests in flight)")
	flag.DurationVar(&o.target, "target", 100*time.Millisecond, "with -open: the end-to-end p99 (202 → final state) a sustained rate keeps")
	flag.IntVar(&o.steps, "steps", 6, "with -open: bisection steps of the sweep (the capacity is found to within the closed-loop rate / 2^steps)")
	flag.Float64Var(&o.overload, "overload", 2, "with -open: the overload phase's rate, as a multiple of the capacity")
	flag.IntVar(&o.maxBacklog, "max-backlog", -1, "the server's ORDERFLOW_MAX_BACKLOG (0: no load shedding); negative: 0 for the closed loop (how fast the api accepts, which shedding would cap at the processing rate), the server's default with -open")
	flag.BoolVar(&o.json, "json", false, "print every figure as one JSON document on stdout (the lines for a person go to stderr)")
	flag.StringVar(&o.plot, "plot", "", "draw throughput and latency percentiles per phase, against the ceilings, into this SVG `FILE`")
	flag.StringVar(&o.from, "from", "", "with -plot: draw the report of an earlier run (its -json output, this `FILE`) instead of measuring")
	flag.StringVar(&o.replica, "replica", "", "embedded mode: ORDERFLOW_REPLICA_URL of the server (file:///dir or s3://bucket/prefix), to measure with continuous replication on")
	flag.Float64Var(&o.rate, "rate", 0, "offer the orderflow phase this many orders/s (the workers paced) instead of as many as they get answered: the AWS mode's requests per order at a given rate; with -open, measure one open-loop phase at this rate instead of the sweep")
	flag.Parse()
	return o
}

// rep collects the run's figures for -json and -plot; steps shows the
// phase in progress on a terminal.
var (
	rep   *report
	steps = newStepper(os.Stderr, false)
)

func run() error {
	o := parseOptions()
	if o.json {
		human = os.Stderr
	}
	if o.open {
		if err := o.checkOpen(); err != nil {
			return err
		}
	}
	if o.follow && o.plot != "" {
		return errors.New("-plot draws the load phases; -follow has none (-json reports its figures)")
	}
	rep = newReport(o)
	steps = newStepper(os.Stderr, stderrIsTerminal())
	if o.from != "" {
		return replot(o.from, o.plot)
	}
	dir, err := os.MkdirTemp("", "orderflow-bench-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "orderflow")
	say("building orderflow … ")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/orderflow").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	say("ok\n")
	switch {
	case o.follow:
		err = runFollow(o, dir, bin)
	case o.open:
		err = measureOpen(o, dir, bin)
	default:
		err = measure(o, dir, bin)
	}
	if err != nil {
		return err
	}
	if o.plot != "" {
		if err := plotReport(rep, o.plot); err != nil {
			return err
		}
		say("plot: %s\n", o.plot)
	}
	if o.json {
		return rep.writeJSON(os.Stdout)
	}
	return nil
}

// measure runs the phases: the ceilings, orderflow at its peak, then at
// half of it (or, with -aws, its AWS requests per order).
func measure(o options, dir, bin string) error {
	say("machine: %d cores; each phase %s with %d workers\n\n", runtime.NumCPU(), o.duration, o.workers)
	_, _, s, p, err := measureUpToPeak(o, dir, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	if o.aws {
		return measureAWSCost(o, s, p)
	}
	printWriter(p.writerBefore, p.writerAfter, p.res.elapsed)
	return measureHalf(o, s, p)
}

// measureUpToPeak measures the ceilings, starts the server and measures
// its closed-loop peak, and prints them: what every mode begins with. The
// caller stops the server.
func measureUpToPeak(o options, dir, bin string) (bare, durable result, s *served, p peak, err error) {
	if bare, durable, err = measureCeilings(o, dir); err != nil {
		return
	}
	if s, err = startServe(o, dir, bin); err != nil {
		return
	}
	if p, err = measurePeak(o, s); err != nil {
		s.stop()
		return
	}
	p.print(bare, durable)
	return
}

// measureCeilings is the first phase: a bare handler, and the same handler
// answering after a group-fsynced append; same load generator.
func measureCeilings(o options, dir string) (bare, durable result, err error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, result{}, err
	}
	steps.step("ceiling: bare net/http 202", o.duration)
	cres, cserver, err := ceiling(o, self, dir, "ceiling", "")
	steps.clear()
	if err != nil {
		return result{}, result{}, err
	}
	rep.Phases = append(rep.Phases, phaseOf("ceiling", true, 0, cres, cserver))
	say("ceiling (bare net/http 202):   %8.0f req/s   p50 %6s  p99 %6s   (load generator: %.2f cores)\n", cres.rate(), cres.pct(50), cres.pct(99), cres.genCores())
	steps.step("durable ceiling: 202 after a group-fsynced append", o.duration)
	dres, dserver, err := ceiling(o, self, dir, "durable-ceiling", filepath.Join(dir, "durable-ceiling.journal"))
	steps.clear()
	if err != nil {
		return result{}, result{}, err
	}
	rep.Phases = append(rep.Phases, phaseOf("durable_ceiling", true, 0, dres, dserver))
	say("durable ceiling (202 after a group-fsynced append): %.0f req/s (%.2f of the ceiling)   p50 %s  p99 %s\n", dres.rate(), dres.rate()/cres.rate(), dres.pct(50), dres.pct(99))
	say("  CPU per request: ceiling %s server + %s load generator; durable ceiling %s + %s\n",
		perRequest(cserver, cres.ok), perRequest(cres.genCPU, cres.ok), perRequest(dserver, dres.ok), perRequest(dres.genCPU, dres.ok))
	return cres, dres, nil
}

// served is orderflow serve running for the measurements, with its users
// logged in.
type served struct {
	api, proc string // base URLs
	db        string // the SQLite file (embedded mode)
	srv       *child
	tokens    []string
	stops     []func()
	// The AWS mode's endpoints.
	sqsEndpoint, ddbEndpoint string
}

// stop ends the server and what was started for it; it may be called
// more than once.
func (s *served) stop() {
	for _, stop := range slices.Backward(s.stops) {
		stop()
	}
	s.stops = nil
}

// startServe starts orderflow serve in the embedded mode, or in the AWS
// mode against a moto_server of its own, and logs the users in.
func startServe(o options, dir, bin string) (*served, error) {
	apiAddr, procAddr := freeAddr(), freeAddr()
	s := &served{api: "http://" + apiAddr, proc: "http://" + procAddr, db: filepath.Join(dir, "orderflow.db")}
	env := []string{
		"ENV=local", "ORDERFLOW_DB=" + s.db,
		"ORDERFLOW_API_ADDR=" + apiAddr, "ORDERFLOW_PROCESSOR_ADDR=" + procAddr,
		"ORDERFLOW_RATE_LIMIT=100000000", "ORDERFLOW_LOGIN_RATE_LIMIT=100000", "ORDERFLOW_FRAUD_THRESHOLD=1000",
		"ORDERFLOW_LOG_LEVEL=warn",
	}
	if o.replica != "" {
		env = append(env, "ORDERFLOW_REPLICA_URL="+o.replica)
	}
	switch {
	case o.maxBacklog >= 0:
		env = append(env, "ORDERFLOW_MAX_BACKLOG="+strconv.Itoa(o.maxBacklog))
	case !o.open:
		env = append(env, "ORDERFLOW_MAX_BACKLOG=0")
	}
	if o.aws {
		awsEnv, err := startAWS(o, s, dir, bin)
		if err != nil {
			s.stop()
			return nil, err
		}
		env = append(env, awsEnv...)
	}
	srv, err := startChild(bin, env, filepath.Join(dir, "orderflow.log"), s.api+"/ready", s.proc+"/ready")
	if err != nil {
		s.stop()
		return nil, err
	}
	s.srv = srv
	s.stops = append(s.stops, srv.stop)
	if s.tokens, err = logins(s.api, o.users); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// peak is the second phase: orderflow at full load, then the processor
// finishing the backlog.
type peak struct {
	res                       result
	before, atLoadEnd, done   float64 // orders processed
	start, loadEnd            time.Time
	e2eElapsed                time.Duration // from start to the last order completed
	cpuLoad, cpuAll           time.Duration // the server's, during the load and until e2eElapsed
	awsBefore                 map[string]float64
	writerBefore, writerAfter map[string]float64
	replica                   func() // with -replica: prints its lag and WAL (replica.go)
}

func measurePeak(o options, s *served) (peak, error) {
	var p peak
	// One reading before the load: orders processed so far, the AWS calls
	// made so far (start-up, logins, stock seeding are not the orders'
	// cost) and the SQLite writer's histograms.
	page, err := scrape(s.proc)
	if err != nil {
		return p, err
	}
	p.before = page.processed()
	p.awsBefore = page.series("aws_requests_total")
	p.writerBefore = page.histograms(writerHistograms...)
	pid := s.srv.cmd.Process.Pid
	cpu0 := treeCPU(pid) // the replicator process's included
	var rw *replicaWatch
	if o.replica != "" {
		rw = watchReplica(s.proc, s.db)
	}
	p.start = time.Now()
	steps.step("orderflow at its peak", o.duration)
	p.res = load(o, s.api+"/orders", s.tokens, o.rate)
	p.cpuLoad = treeCPU(pid) - cpu0
	if rw != nil {
		maxLag, maxWAL, wal0 := rw.end()
		caught := make(chan time.Duration, 1)
		go func() { caught <- caughtUp(s.proc) }()
		p.replica = func() { printReplica("during the peak", maxLag, maxWAL, wal0, <-caught) }
	}
	steps.step("orderflow: waiting for the backlog to complete", 0)
	defer steps.clear()
	if page, err = scrape(s.proc); err != nil {
		return p, err
	}
	p.writerAfter = page.histograms(writerHistograms...)
	p.atLoadEnd = page.processed()
	p.loadEnd = time.Now()
	if p.done, err = waitProcessed(s.proc, p.before, float64(p.res.ok)); err != nil {
		return p, err
	}
	p.e2eElapsed = time.Since(p.start)
	p.cpuAll = treeCPU(pid) - cpu0
	return p, nil
}

// waitProcessed waits, for up to 5 minutes, until the processor has
// processed want orders more than before, and returns how many more it
// has processed.
func waitProcessed(proc string, before, want float64) (float64, error) {
	var done float64
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n, err := processed(proc)
		if err != nil {
			return 0, err
		}
		if done = n - before; done >= want {
			break
		}
	}
	return done, nil
}

func (p peak) print(bare, durable result) {
	res := p.res
	rep.Phases = append(rep.Phases, phaseOf("orderflow_peak", false, 0, res, p.cpuLoad))
	during := p.atLoadEnd - p.before
	rep.Peak = &peakFigures{
		CompletedPerSecond: p.done / p.e2eElapsed.Seconds(), Completed: p.done, LastCompletedAfterMs: ms(p.e2eElapsed),
		ProcessedDuringLoad: during, ServerCPUPerOrderUs: float64(p.cpuAll.Microseconds()) / max(p.done, 1),
		ServerCoresBusy: p.cpuLoad.Seconds() / res.elapsed.Seconds(), RatioToCeiling: res.rate() / bare.rate(),
		RatioToDurableCeiling: res.rate() / durable.rate(), LoadGeneratorCPUPerReqUs: float64(res.genCPU.Microseconds()) / float64(max(res.ok, 1)),
	}
	say("orderflow accepted (durable):  %8.0f orders/s   p50 %6s  p99 %6s   (%d errors; load generator: %.2f cores)\n", res.rate(), res.pct(50), res.pct(99), res.errs, res.genCores())
	say("ratio to the ceiling:          %8.2f   (to the durable ceiling: %.2f)\n", res.rate()/bare.rate(), res.rate()/durable.rate())
	say("completed end to end:          %8.0f orders/s   (%0.f orders, last one %s after the load began)\n", p.done/p.e2eElapsed.Seconds(), p.done, p.e2eElapsed.Round(time.Millisecond))
	// Where the end-to-end rate comes from: the processor shares the cores
	// with the api during the load and has them to itself afterwards.
	say("  of which:                    %8.0f orders/s processed during the load, the backlog of %.0f at %.0f orders/s after it\n",
		during/res.elapsed.Seconds(), p.done-during, (p.done-during)/max(p.start.Add(p.e2eElapsed).Sub(p.loadEnd).Seconds(), 1e-3))
	// CPU time is far less disturbed by other load on the machine than
	// rates are: compare it between runs and versions.
	say("server CPU per order:          %8.0f µs accepted+processed   (%.2f cores busy during the load)\n",
		float64(p.cpuAll.Microseconds())/max(p.done, 1), p.cpuLoad.Seconds()/res.elapsed.Seconds())
	// The accepted rate is about the cores busy divided by the CPU each
	// request costs, server and load generator together (they share the
	// machine); compare these with the ceilings' above.
	say("  CPU per accepted order in the load: %s server (the processor's work beside it included) + %s load generator\n",
		perRequest(p.cpuLoad, res.ok), perRequest(res.genCPU, res.ok))
	if p.replica != nil {
		p.replica()
	}
}

// measureHalf is the last phase: half the peak, paced, for the ack
// latency a sane operator sees; then, with the server stopped, the
// end-to-end latencies read from its database.
func measureHalf(o options, s *served, p peak) error {
	halfStart := time.Now()
	var rw *replicaWatch
	if o.replica != "" {
		rw = watchReplica(s.proc, s.db)
	}
	steps.step("orderflow at half its peak", o.duration)
	half := load(o, s.api+"/orders", s.tokens, p.res.rate()/2)
	steps.clear()
	if rw != nil {
		maxLag, maxWAL, wal0 := rw.end()
		printReplica("at half the peak", maxLag, maxWAL, wal0, -1)
	}
	rep.Phases = append(rep.Phases, phaseOf("orderflow_half", false, p.res.rate()/2, half, 0))
	say("at half the peak (%5.0f/s):    ack p50 %6s  p99 %6s\n", p.res.rate()/2, half.pct(50), half.pct(99))
	if _, err := waitProcessed(s.proc, p.before, float64(p.res.ok+half.ok)); err != nil {
		return err
	}
	rss := peakRSS(s.srv.cmd.Process.Pid)
	s.stop()

	all, halfLoad, err := endToEnd(s.db, halfStart)
	if err != nil {
		return err
	}
	rep.EndToEnd = &endToEndFig{
		All:      latencies{len(all), ms(pct(all, 50)), ms(pct(all, 99))},
		HalfLoad: latencies{len(halfLoad), ms(pct(halfLoad, 50)), ms(pct(halfLoad, 99))},
	}
	rep.PeakRSSMB = float64(rss) / (1 << 20)
	say("end-to-end latency (202 → COMPLETED, %d orders): p50 %s  p99 %s\n", len(all), pct(all, 50), pct(all, 99))
	// At half the peak the processor keeps up: no backlog in these figures.
	say("  of the half-load phase (%d orders): p50 %s  p99 %s\n", len(halfLoad), pct(halfLoad, 50), pct(halfLoad, 99))
	say("peak RSS of the server:        %8.1f MB\n", float64(rss)/(1<<20))
	return nil
}

// ceiling runs the bench binary itself as the baseline server called name
// (a durable one with a journal path) and loads it; it returns the load's
// result and the server's CPU time during it.
func ceiling(o options, self, dir, name, journalPath string) (result, time.Duration, error) {
	addr := freeAddr()
	env := []string{"BENCH_CEILING_ADDR=" + addr, "BENCH_CEILING_JOURNAL=" + journalPath}
	c, err := startChild(self, env, filepath.Join(dir, name+".log"), "http://"+addr+"/")
	if err != nil {
		return result{}, 0, err
	}
	defer c.stop()
	pid := c.cmd.Process.Pid
	cpu0 := cpuTime(pid)
	r := load(o, "http://"+addr+"/orders", []string{"x"}, 0)
	return r, cpuTime(pid) - cpu0, nil
}

// perRequest is d per request, for n requests.
func perRequest(d time.Duration, n int) string {
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(max(n, 1)))
}

type result struct {
	ok, errs int
	elapsed  time.Duration
	lat      []time.Duration
	genCPU   time.Duration // the load generator's own CPU time
}

// selfCPU is the CPU time this process (the load generator) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// genCores is how many cores the load generator kept busy.
func (r result) genCores() float64 { return r.genCPU.Seconds() / r.elapsed.Seconds() }

func (r result) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r result) pct(p int) time.Duration { return pct(r.lat, p) }

// load runs o.workers closed-loop clients for o.duration; with pace > 0 the
// whole load is held to pace requests/s (open loop, requests on a schedule).
func load(o options, url string, tokens []string, pace float64) result {
	tr := &http.Transport{MaxIdleConns: o.workers, MaxIdleConnsPerHost: o.workers, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var ok, errs atomic.Int64
	cpu0 := selfCPU()
	lats := make([][]time.Duration, o.workers)
	start := time.Now()
	end := start.Add(o.duration)
	var next atomic.Int64 // paced schedule: n-th request at start + n/pace
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(`{"amount":1250,"currency":"USD"}`)
			for i := 0; ; i++ {
				if pace > 0 {
					n := next.Add(1)
					at := start.Add(time.Duration(float64(n) / pace * float64(time.Second)))
					time.Sleep(time.Until(at))
				}
				if time.Now().After(end) {
					return
				}
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tokens[(w+i*o.workers)%len(tokens)])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r := result{ok: int(ok.Load()), errs: int(errs.Load()), elapsed: time.Since(start), genCPU: selfCPU() - cpu0}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	return r
}

func logins(api string, n int) ([]string, error) {
	tokens := make([]string, n)
	for i := range tokens {
		resp, err := http.Post(api+"/login", "application/json", strings.NewReader(fmt.Sprintf(`{"user_id":"bench%d"}`, i)))
		if err != nil {
			return nil, err
		}
		var t struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&t)
		resp.Body.Close()
		if err != nil || t.AccessToken == "" {
			return nil, fmt.Errorf("login bench%d: %d %v", i, resp.StatusCode, err)
		}
		tokens[i] = t.AccessToken
	}
	return tokens, nil
}

// printWriter prints where an embedded-mode write spent its time between
// two readings of its histograms (writerHistograms): the WAL's fsyncs, the writes per
// transaction, and how long callers waited.
func printWriter(before, after map[string]float64, elapsed time.Duration) {
	d := func(k string) float64 { return after[k] - before[k] }
	meanOf := func(name, labels string) (time.Duration, bool) {
		n := d(name + "_count" + labels)
		if n == 0 {
			return 0, false
		}
		return time.Duration(d(name+"_sum"+labels) / n * float64(time.Second)).Round(10 * time.Microsecond), true
	}
	mean := func(name, labels string) string {
		if m, ok := meanOf(name, labels); ok {
			return m.String()
		}
		return "-"
	}
	meanMs := func(name, labels string) float64 { m, _ := meanOf(name, labels); return ms(m) }
	rep.Writer = &writer{
		WALFsyncMeanMs: meanMs("sqlite_wal_fsync_seconds", ""), FsyncsPerSecond: d("sqlite_wal_fsync_seconds_count") / elapsed.Seconds(),
		WritesPerTransaction: d("sqlite_transaction_writes_sum") / max(d("sqlite_transaction_writes_count"), 1),
		WaitFsyncMeanMs:      meanMs("sqlite_write_wait_seconds", `{until="fsync"}`), WaitCommitMeanMs: meanMs("sqlite_write_wait_seconds", `{until="commit"}`),
	}
	say("  SQLite writer in it:          WAL fsync %s mean (%.0f/s), %.1f writes per transaction; callers waited %s until the fsync, %s until the commit (means)\n",
		mean("sqlite_wal_fsync_seconds", ""), d("sqlite_wal_fsync_seconds_count")/elapsed.Seconds(),
		d("sqlite_transaction_writes_sum")/max(d("sqlite_transaction_writes_count"), 1),
		mean("sqlite_write_wait_seconds", `{until="fsync"}`), mean("sqlite_write_wait_seconds", `{until="commit"}`))
}

// endToEnd reads every completed bench order's created and updated times
// back from the database at path: the latencies from the 202 to the
// COMPLETED write, sorted, of all orders and of those created at or after
// since.
func endToEnd(path string, since time.Time) (all, after []time.Duration, err error) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	for u := 0; ; u++ {
		var cursor orderflow.OrderID
		found := false
		for {
			page, err := db.ListOrders(context.Background(), fmt.Sprintf("bench%d", u), cursor, 100)
			if err != nil {
				return nil, nil, err
			}
			for _, o := range page {
				found = true
				if o.Status == orderflow.StatusCompleted {
					d := o.UpdatedAt.Sub(o.CreatedAt)
					all = append(all, d)
					if !o.CreatedAt.Before(since.Truncate(time.Millisecond)) {
						after = append(after, d)
					}
				}
			}
			if len(page) < 100 {
				break
			}
			cursor = page[len(page)-1].ID
		}
		if !found {
			break
		}
	}
	if len(all) == 0 {
		return nil, nil, errors.New("no completed orders")
	}
	slices.Sort(all)
	slices.Sort(after)
	return all, after, nil
}

// pct is the p-th percentile of sorted durations, 0 if there are none.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100].Round(10 * time.Microsecond)
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startChild(bin string, env []string, logPath string, readyURLs ...string) (*child, error) {
	return startChildArgs(bin, nil, env, logPath, readyURLs...)
}

func startChildArgs(bin string, args, env []string, logPath string, readyURLs ...string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(c.done) }()
	for _, u := range readyURLs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					break
				}
			}
			if time.Now().After(deadline) {
				c.stop()
				b, _ := os.ReadFile(logPath)
				return nil, fmt.Errorf("%s not ready: %v\n%s", u, err, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func freeAddr() string {
	// BENCH_PORTS=22100-22199 keeps the servers of a run in a range of
	// ports (a shared machine's share); else the kernel picks free ones.
	if lo, hi, ok := portRange(os.Getenv("BENCH_PORTS")); ok {
		for port := nextPort.Add(1) - 1 + int64(lo); port <= int64(hi); port = nextPort.Add(1) - 1 + int64(lo) {
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr
			}
		}
		panic("no free port left in BENCH_PORTS=" + os.Getenv("BENCH_PORTS"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var nextPort atomic.Int64

// portRange parses BENCH_PORTS, "LO-HI".
func portRange(s string) (lo, hi int, ok bool) {
	a, b, found := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	return lo, hi, found && err1 == nil && err2 == nil && 0 < lo && lo <= hi && hi < 65536
}

// cpuTime reads the user and system CPU time the process has used so far
// (from /proc, in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces; fields after it are
	// plain. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// peakRSS reads VmHWM (the resident set's high-water mark) in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startAWS starts moto_server on a free port (from $ORDERFLOW_MOTO_SERVER,
// the virtualenv scripts/test.sh installs, or PATH) for DynamoDB, and for
// SQS either ElasticMQ (o.sqs "elasticmq": $ORDERFLOW_ELASTICMQ_CLASSPATH
// or the jars scripts/test.sh installs) or the same moto_server; it
// creates the queue, DLQ and table with "orderflow init" and returns the
// AWS-mode settings. The servers' stops go on s.stops.
func startAWS(o options, s *served, dir, bin string) ([]string, error) {
	server := os.Getenv("ORDERFLOW_MOTO_SERVER")
	if server == "" {
		home, _ := os.UserHomeDir()
		server = filepath.Join(home, ".cache", "orderflow", "moto-5.2.5", "bin", "moto_server")
		if _, err := os.Stat(server); err != nil {
			server = "moto_server"
		}
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	moto, err := startChildArgs(server, []string{"-H", "127.0.0.1", "-p", port}, nil, filepath.Join(dir, "moto.log"), "http://"+addr+"/moto-api/")
	if err != nil {
		return nil, fmt.Errorf("moto_server (run scripts/test.sh once to install it): %w", err)
	}
	s.stops = append(s.stops, moto.stop)
	s.sqsEndpoint, s.ddbEndpoint = "http://"+addr, "http://"+addr
	switch o.sqs {
	case "moto":
	case "elasticmq":
		cp, err := awstest.ElasticMQClasspath()
		if err != nil {
			return nil, fmt.Errorf("ElasticMQ (run scripts/test.sh once to install it, or -sqs moto): %w", err)
		}
		url, stop, err := awstest.StartElasticMQ(cp, 0)
		if err != nil {
			return nil, err
		}
		s.stops = append(s.stops, stop)
		s.sqsEndpoint = url
	default:
		return nil, fmt.Errorf("-sqs %q: want elasticmq or moto", o.sqs)
	}
	env := []string{"AWS_ENDPOINT_URL_SQS=" + s.sqsEndpoint, "AWS_ENDPOINT_URL_DYNAMODB=" + s.ddbEndpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench"}
	cmd := exec.Command(bin, "init")
	cmd.Env = append(append(os.Environ(), "ENV=local"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("orderflow init: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "SQS_QUEUE_URL=") || strings.HasPrefix(f, "SQS_DLQ_URL=") || strings.HasPrefix(f, "DDB_TABLE=") {
			env = append(env, f)
		}
	}
	say("AWS mode: SQS on %s (%s), DynamoDB on moto_server %s (moto's DynamoDB, one Python process, is the ceiling of these rates)\n",
		o.sqs, s.sqsEndpoint, s.ddbEndpoint)
	return env, nil
}

// label returns the value of name in a Prometheus label list.
func label(labels, name string) string {
	_, v, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, `"`)
	return v
}

// measureAWSCost prints orderflow's AWS requests per completed order
// from the processor's aws_requests_total since the load began (in serve
// mode the api's and the processor's calls land in the same registry, so
// one scrape has them all), and, with o.baseline, the seed's design
// measured on the same servers at the rate orderflow accepted, side by
// side, with the price of a million orders.
func measureAWSCost(o options, s *served, p peak) error {
	page, err := scrape(s.proc)
	if err != nil {
		return err
	}
	after := page.series("aws_requests_total")
	rss := peakRSS(s.srv.cmd.Process.Pid)
	ours := costOf(p.awsBefore, after, p.done)
	rep.PeakRSSMB = float64(rss) / (1 << 20)
	rep.AWS = &awsFigs{SQSPerOrder: ours.perOrder(sum(ours.sqs)), DynamoDBWritesPerOrd: ours.perOrder(sum(ours.ddbWrite)),
		DynamoDBReadsPerOrder: ours.perOrder(sum(ours.ddbRead)), RateLimiterPerOrder: ours.perOrder(sum(ours.limiter)), ByOperation: map[string]float64{}}
	for what, m := range map[string]map[string]float64{"sqs": ours.sqs, "dynamodb_write": ours.ddbWrite, "dynamodb_read": ours.ddbRead, "rate_limiter": ours.limiter, "simulated_gateway": ours.gatewayDB} {
		for op, n := range m {
			rep.AWS.ByOperation[what+"/"+op] = ours.perOrder(n)
		}
	}
	say("SQS requests per order:        %8.2f   (target ≤ 0.35 at full load; floor 0.30)\n", ours.perOrder(sum(ours.sqs)))
	say("DynamoDB writes per order:     %8.2f   (target ≤ 3 without items; %.2f reads; rate limiter %.2f requests on its own)\n",
		ours.perOrder(sum(ours.ddbWrite)), ours.perOrder(sum(ours.ddbRead)), ours.perOrder(sum(ours.limiter)))
	say("peak RSS of the server:        %8.1f MB\n\n", float64(rss)/(1<<20))
	cols := []column{{"orderflow", ours}}
	if o.baseline {
		// orderflow stops; ElasticMQ and moto stay up for the seed's
		// design, which gets the rate orderflow accepted as its offered load.
		s.srv.stop()
		pace := p.res.rate()
		seedCost, res, err := measureSeed(o, s.sqsEndpoint, s.ddbEndpoint, pace)
		if err != nil {
			return err
		}
		say("seed's design, offered %.0f orders/s for %s: %d accepted   ack p50 %s  p99 %s   (%d errors)\n\n", pace, o.duration, res.ok, res.pct(50), res.pct(99), res.errs)
		rep.Phases = append(rep.Phases, phaseOf("seed_design", false, pace, res, 0))
		cols = append(cols, column{"seed's design", seedCost})
	}
	printCosts(human, listPrices, cols...)
	return nil
}
