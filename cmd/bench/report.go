package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/term"
)

// human is where the bench's lines for a person go: stdout, or stderr
// with -json (stdout is then the JSON document alone).
var human io.Writer = os.Stdout

func say(format string, args ...any) { fmt.Fprintf(human, format, args...) }

// report is every figure of a run, for -json and -plot. Durations are in
// milliseconds, rates per second.
type report struct {
	Machine  machine      `json:"machine"`
	Phases   []phase      `json:"phases"`
	Peak     *peakFigures `json:"peak,omitempty"`
	Writer   *writer      `json:"sqlite_writer,omitempty"`
	EndToEnd *endToEndFig `json:"end_to_end,omitempty"`
	// PeakRSSMB is the server's peak resident memory.
	PeakRSSMB float64  `json:"peak_rss_mb,omitempty"`
	AWS       *awsFigs `json:"aws,omitempty"`
	// Follow holds the figures of -follow, one per way of following.
	Follow []followFig `json:"follow,omitempty"`
	// Capacity is -open's headline, its fields at the top level of the
	// document; Open the phases behind it.
	*Capacity
	Open *openLoop `json:"open_loop,omitempty"`
}

// Capacity is what one machine sustains (open.go), beside what bounds
// it, all measured in the same run: the ceilings, and the rate the
// closed loop had accepted.
type Capacity struct {
	SustainedPerSecond      float64 `json:"sustained_capacity_per_s"`
	DurableCeilingPerSecond float64 `json:"durable_ceiling_per_s"`
	CeilingPerSecond        float64 `json:"ceiling_per_s"`
	// AcceptedPerSecond is the closed-loop phase's accepted rate, the
	// sweep's upper bound.
	AcceptedPerSecond     float64 `json:"accepted_per_s"`
	RatioToDurableCeiling float64 `json:"capacity_to_durable_ceiling"`
}

// openLoop is how -open ran and every phase it measured.
type openLoop struct {
	Arrivals    string  `json:"arrivals"` // poisson or constant
	Connections int     `json:"connections"`
	TargetP99Ms float64 `json:"target_end_to_end_p99_ms"`
	Steps       int     `json:"steps"`
	Overload    float64 `json:"overload_factor"`
	// Sweep are the bisection's phases in order, Levels the 50, 80 and
	// 100 % of the capacity, OverloadPhase the one at Overload times it.
	Sweep         []openPhase `json:"sweep"`
	Levels        []openPhase `json:"levels,omitempty"`
	OverloadPhase *openPhase  `json:"overload,omitempty"`
}

// followFig is what following orders one way cost (see runFollow).
type followFig struct {
	How                 string  `json:"how"` // polling or sse
	Orders              int     `json:"orders"`
	RequestsPerOrder    float64 `json:"status_requests_per_order"`
	StoreReads          float64 `json:"store_reads"`
	WatchReads          float64 `json:"watch_reads"`
	SingleOrderReads    float64 `json:"single_order_reads"`
	OrderSeconds        float64 `json:"order_seconds_followed"`
	ReadsPerOrderSecond float64 `json:"reads_per_followed_order_per_second"`
}

type machine struct {
	Cores        int     `json:"cores"`
	GoVersion    string  `json:"go_version"`
	PhaseSeconds float64 `json:"phase_seconds"`
	Workers      int     `json:"workers"`
	Users        int     `json:"users"`
	Mode         string  `json:"mode"` // embedded or aws
}

// phase is one measured load: a ceiling or orderflow.
type phase struct {
	Name string `json:"name"` // ceiling, durable_ceiling, orderflow_peak, orderflow_half
	// Ceiling is true for the baselines orderflow is measured against.
	Ceiling bool `json:"ceiling"`
	// OfferedPerSecond is the paced load (0: as fast as the workers go).
	OfferedPerSecond  float64 `json:"offered_per_second"`
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	Accepted          int     `json:"accepted"`
	Errors            int     `json:"errors"`
	P50ms             float64 `json:"p50_ms"`
	P90ms             float64 `json:"p90_ms"`
	P99ms             float64 `json:"p99_ms"`
	// LoadGeneratorCores is the CPU the bench's own client used.
	LoadGeneratorCores float64 `json:"load_generator_cores"`
	// ServerCPUPerRequestUs is the server's CPU per accepted request
	// (the processor's work during the load included for orderflow).
	ServerCPUPerRequestUs float64 `json:"server_cpu_per_request_us,omitempty"`
}

type peakFigures struct {
	CompletedPerSecond       float64 `json:"completed_per_second"`
	Completed                float64 `json:"completed"`
	LastCompletedAfterMs     float64 `json:"last_completed_after_ms"`
	ProcessedDuringLoad      float64 `json:"processed_during_load"`
	ServerCPUPerOrderUs      float64 `json:"server_cpu_per_order_us"`
	ServerCoresBusy          float64 `json:"server_cores_busy"`
	RatioToCeiling           float64 `json:"ratio_to_ceiling"`
	RatioToDurableCeiling    float64 `json:"ratio_to_durable_ceiling"`
	LoadGeneratorCPUPerReqUs float64 `json:"load_generator_cpu_per_request_us"`
}

type writer struct {
	WALFsyncMeanMs       float64 `json:"wal_fsync_mean_ms"`
	FsyncsPerSecond      float64 `json:"fsyncs_per_second"`
	WritesPerTransaction float64 `json:"writes_per_transaction"`
	WaitFsyncMeanMs      float64 `json:"wait_until_fsync_mean_ms"`
	WaitCommitMeanMs     float64 `json:"wait_until_commit_mean_ms"`
}

type latencies struct {
	Orders int     `json:"orders"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

type endToEndFig struct {
	All      latencies `json:"all"`
	HalfLoad latencies `json:"half_load"`
}

type awsFigs struct {
	SQSPerOrder           float64            `json:"sqs_requests_per_order"`
	DynamoDBWritesPerOrd  float64            `json:"dynamodb_writes_per_order"`
	DynamoDBReadsPerOrder float64            `json:"dynamodb_reads_per_order"`
	RateLimiterPerOrder   float64            `json:"rate_limiter_requests_per_order"`
	ByOperation           map[string]float64 `json:"requests_per_order_by_operation"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// phaseOf is the figures of one load's result.
func phaseOf(name string, ceiling bool, offered float64, r result, serverCPU time.Duration) phase {
	p := phase{Name: name, Ceiling: ceiling, OfferedPerSecond: offered, AcceptedPerSecond: r.rate(), Accepted: r.ok, Errors: r.errs,
		P50ms: ms(r.pct(50)), P90ms: ms(r.pct(90)), P99ms: ms(r.pct(99)), LoadGeneratorCores: r.genCores()}
	if serverCPU > 0 && r.ok > 0 {
		p.ServerCPUPerRequestUs = float64(serverCPU.Microseconds()) / float64(r.ok)
	}
	return p
}

func newReport(o options) *report {
	mode := "embedded"
	switch {
	case o.aws:
		mode = "aws"
	case o.follow:
		mode = "split" // -follow runs orderflow api and orderflow processor
	}
	return &report{Machine: machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), PhaseSeconds: o.duration.Seconds(), Workers: o.workers, Users: o.users, Mode: mode}}
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// stepper tells a person at a terminal which phase runs now, on stderr;
// where stderr is not a terminal it says nothing.
type stepper struct {
	w  io.Writer
	on bool
}

func newStepper(w io.Writer, tty bool) *stepper { return &stepper{w: w, on: tty} }

func stderrIsTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// step shows the phase starting now and how long it lasts.
func (s *stepper) step(name string, d time.Duration) {
	if s.on {
		fmt.Fprintf(s.w, "\r\033[K… %s (%s)", name, d)
	}
}

// clear removes the step line before a result is printed.
func (s *stepper) clear() {
	if s.on {
		fmt.Fprint(s.w, "\r\033[K")
	}
}

// replot draws the JSON report in the file from into the SVG file to.
func replot(from, to string) error {
	if to == "" {
		return errors.New("-from needs -plot FILE.svg")
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return plotReport(&r, to)
}
