package replica

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// DefaultNice is the niceness of the replicator process: low enough a
// priority that, with the cores saturated, the api and the processor keep
// nearly all of them, high enough that the replica still keeps up (see
// docs/performance.md for the figures of each niceness).
const DefaultNice = 10

// job is what a Process sends its replicator process: one JSON line on
// the process's stdin, which then stays open until the process is to
// make its last sync and exit.
type job struct {
	Path         string        `json:"path"`
	URL          string        `json:"url"`
	S3Endpoint   string        `json:"s3_endpoint,omitempty"`
	Region       string        `json:"region,omitempty"`
	SyncInterval time.Duration `json:"sync_interval"`
	LogLevel     string        `json:"log_level"`
}

// ServeProcess is the replicator process (orderflow replicate): it reads
// its job from in, the first line its Process sent, replicates the file
// (Replicator.Run) until in ends, because the Process asked for the last
// sync or because the parent died, and writes a status line to out after
// each change: after each sync, when it starts or stops replicating.
// newLogger makes its logger of the parent's log level. Signals are not
// its business: it ignores SIGINT and SIGTERM, which a terminal or
// systemd send the whole process group, since it must make its last sync
// after its parent closed the database.
func ServeProcess(in io.Reader, out io.Writer, newLogger func(level string) *slog.Logger) error {
	br := bufio.NewReader(in)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return orderflow.Errorf(orderflow.EInvalid, "replicate is started by orderflow serve, api or processor, which send its job on stdin: %v", err)
	}
	var j job
	if err := json.Unmarshal(line, &j); err != nil {
		return orderflow.Errorf(orderflow.EInvalid, "replicate: the job on stdin: %v", err)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	r, err := New(j.Path, Config{URL: j.URL, S3Endpoint: j.S3Endpoint, Region: j.Region, SyncInterval: j.SyncInterval, Logger: newLogger(j.LogLevel)}, nil)
	if err != nil {
		return err
	}
	r.onStatus = func(s status) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(s) // a parent gone is the end of in too
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, br); cancel() }()
	return r.Run(ctx)
}

// ProcessConfig says how a Process runs its replicator process.
type ProcessConfig struct {
	// Command makes the command of a new replicator process, one that runs
	// ServeProcess with its stdin and stdout (orderflow replicate). The
	// Process sets its stdin, stdout, stderr and SysProcAttr.
	Command func() *exec.Cmd
	// Nice is its niceness, 0 (the parent's priority) to 19 (the lowest).
	Nice int
	// Logs receives its log lines (its stderr), each in one Write.
	Logs io.Writer
	// LogLevel is its log level (debug, info, warn or error).
	LogLevel string
}

// Process replicates a SQLite file from a replicator process of its own
// (a child: ServeProcess running in ProcessConfig.Command) at a lower CPU
// priority, and keeps the replica's metrics in this process from the
// child's status lines, so that they read as a Replicator's would.
//
// A child that exits unasked is counted in orderflow_replica_errors_total,
// logged and started again after a backoff (1 s, doubling to 30 s, back to
// 1 s once a child synced); while none runs the lag grows. The child dies
// with this process (on Linux by PR_SET_PDEATHSIG; elsewhere when its
// stdin ends), and holds the file's replica lock while it replicates
// (Replicator).
type Process struct {
	path string
	job  job
	pc   ProcessConfig
	log  *slog.Logger

	covered atomic.Int64 // as Replicator's
	active  atomic.Bool
	// told is set at the first status line: until then the lag is
	// counted as if active, never 0 for a child that has not said
	// whether it replicates or stands by.
	told   atomic.Bool
	errors atomic.Uint64

	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	err     error // the last sync's, once done is closed
}

// Bounds of the restart backoff, and of the wait for the last sync.
const (
	minRestart = time.Second
	maxRestart = 30 * time.Second
	lastSync   = 30 * time.Second
)

// StartProcess starts replicating the file at path to cfg's replica from
// a child process, with the replica's metrics registered with reg (none
// if nil). Stop ends it.
func StartProcess(path string, cfg Config, pc ProcessConfig, reg prometheus.Registerer) (*Process, error) {
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if pc.Logs == nil {
		pc.Logs = io.Discard
	}
	if _, err := newClient(cfg); err != nil {
		return nil, err
	}
	p := &Process{path: path, pc: pc, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		job: job{Path: path, URL: cfg.URL, S3Endpoint: cfg.S3Endpoint, Region: cfg.Region, SyncInterval: cfg.SyncInterval, LogLevel: pc.LogLevel}}
	p.covered.Store(time.Now().UnixNano())
	if err := registerMetrics(reg, func() float64 { return float64(p.errors.Load()) }, p.Lag, p.active.Load); err != nil {
		return nil, err
	}
	go p.run()
	return p, nil
}

// Lag is as Replicator.Lag, from what the child reported.
func (p *Process) Lag(now time.Time) time.Duration {
	return lagOf(p.path, p.active.Load() || !p.told.Load(), time.Unix(0, p.covered.Load()), now)
}

// Stop tells the child to make its last sync and exit, and returns that
// sync's error. Call it once the database is closed, so that the replica
// has the last writes. If no child runs (one exited and waits for its
// restart), a new one is started for the last sync. A child still running
// after 30 s is killed.
func (p *Process) Stop() error {
	p.stopped.Do(func() { close(p.stop) })
	<-p.done
	return p.err
}

// run starts children, one after another, until Stop.
func (p *Process) run() {
	defer close(p.done)
	defer p.active.Store(false)
	backoff := minRestart
	for {
		synced, err := p.runChild(p.stop)
		select {
		case <-p.stop:
			p.err = err
			return
		default:
		}
		if synced {
			backoff = minRestart
		}
		p.errors.Add(1)
		p.log.Error("the replicator process exited; starting another", "err", err, "after", backoff.String())
		select {
		case <-p.stop:
			// What the last child did not ship goes now.
			_, p.err = p.runChild(nil)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRestart)
	}
}

// runChild runs one child until it exits, or, once stop is closed (at
// once if stop is nil), tells it to make its last sync and waits for that
// (lastSync at most). It returns whether the child reported a successful
// sync, and how it ended.
func (p *Process) runChild(stop <-chan struct{}) (synced bool, err error) {
	c, err := p.startChild()
	if err != nil {
		return false, err
	}
	p.log.Info("replicator process started", "pid", c.pid, "nice", p.pc.Nice)
	reported := make(chan bool, 1)
	go func() { reported <- p.readStatus(c.status) }()
	go p.copyLogs(c.logs)
	if stop == nil {
		c.stdin.Close()
	}
	select {
	case err = <-c.exited:
	case <-stop:
		c.stdin.Close() // the last sync, then exit
		select {
		case err = <-c.exited:
		case <-time.After(lastSync):
			c.kill()
			err = <-c.exited
			err = fmt.Errorf("the replicator process made no last sync within %s: %w", lastSync, err)
		}
	}
	c.stdin.Close()
	return <-reported, err
}

// readStatus applies the child's status lines to p's metrics until r ends,
// and reports whether a sync succeeded.
func (p *Process) readStatus(r io.ReadCloser) (synced bool) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	var seen uint64 // errors the child reported
	for sc.Scan() {
		var s status
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			p.log.Warn("replicator process: status line not understood", "line", sc.Text(), "err", err)
			continue
		}
		p.active.Store(s.Active)
		p.told.Store(true)
		if s.Covered != 0 {
			synced = true
			p.covered.Store(s.Covered)
		}
		if s.Errors > seen {
			p.errors.Add(s.Errors - seen)
			seen = s.Errors
		}
	}
	return synced
}

// copyLogs writes the child's log lines to p's Logs, one Write each, so
// that they do not interleave with this process's.
func (p *Process) copyLogs(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.pc.Logs.Write(append(sc.Bytes(), '\n'))
	}
}

// child is a running replicator process.
type child struct {
	pid          int
	stdin        io.WriteCloser
	status, logs io.ReadCloser
	exited       <-chan error
	kill         func()
}

// startChild starts a replicator process and sends it its job.
func (p *Process) startChild() (*child, error) {
	cmd := p.pc.Command()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, err
	}
	logsR, logsW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		statusR.Close()
		statusW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, statusW, logsW
	exited, err := launch(cmd, p.pc.Nice)
	// The child has its ends; this process keeps the others.
	stdinR.Close()
	statusW.Close()
	logsW.Close()
	if err != nil {
		stdinW.Close()
		statusR.Close()
		logsR.Close()
		return nil, fmt.Errorf("start the replicator process: %w", err)
	}
	b, _ := json.Marshal(p.job)
	if _, err := stdinW.Write(append(b, '\n')); err != nil {
		// It exited at once; its exit says why.
		stdinW.Close()
		go io.Copy(io.Discard, statusR)
		go p.copyLogs(logsR)
		return nil, errors.Join(fmt.Errorf("send the replicator process its job: %w", err), <-exited)
	}
	return &child{pid: cmd.Process.Pid, stdin: stdinW, status: statusR, logs: logsR, exited: exited, kill: func() { cmd.Process.Kill() }}, nil
}
