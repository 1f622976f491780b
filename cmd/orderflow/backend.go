package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
)

// backend is the queue and store the program runs on: one SQLite file in
// the embedded mode, SQS and DynamoDB in the AWS mode.
type backend struct {
	intake orderflow.Intake
	store  orderflow.Store
	stock  stockSeeder // the store, for seeding ORDERFLOW_STOCK
	queue  orderflow.Queue
	dead   orderflow.DeadLetters
	ledger processor.Ledger // the simulated payment gateway's database
	// limiter holds the api's rate limits where every api process on this
	// backend sees them.
	limiter orderflow.RateLimiter
	// watcher tells the api's status streams of order changes.
	watcher orderflow.Watcher
	// loops run beside the processor, where it runs (the AWS mode's
	// pending sweep; none in the embedded mode).
	loops []loop
	// backlogInterval is how often each api process counts the queue for
	// ORDERFLOW_MAX_BACKLOG (see newBacklog).
	backlogInterval time.Duration
	// work is the processor's queue and store.
	work struct {
		queue processor.Queue
		store processor.Store
	}
	close func() error
	// watch is the dead-letter queue whose orders the processor ends.
	watch processor.DeadLetterSource
}

// loop is a named job that runs until its context ends, then returns nil;
// an error it returns stops the program.
type loop struct {
	name string
	run  func(ctx context.Context) error
}

// openBackend opens the queue and store of cfg's mode. reg, if not nil,
// receives the backend's own metrics (aws_requests_total in the AWS mode,
// the writer's sqlite_* metrics in the embedded mode); tp, if not nil,
// makes its spans (the SQLite writes, the AWS calls).
func openBackend(ctx context.Context, cfg config, log *slog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (*backend, error) {
	if cfg.awsMode() {
		return openAWS(ctx, cfg, log, reg, tp)
	}
	opts := sqliteOptions(cfg, log, reg)
	opts.TracerProvider = tp
	db, err := sqlite.Open(ctx, cfg.DBPath, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.DBPath, err)
	}
	b := &backend{intake: db, store: db, stock: db, queue: db, dead: db, watch: db, ledger: db, limiter: db.RateLimiter(), watcher: db, close: db.Close,
		backlogInterval: orderflow.DefaultBacklogSampleInterval}
	// One value for both, so that a receive starts the orders it hands out.
	wq := db.WorkQueue()
	b.work.queue, b.work.store = wq, wq
	return b, nil
}

// startReplica starts replicating the embedded mode's file when
// ORDERFLOW_REPLICA_URL is set, from a replicator process of its own
// (orderflow replicate, at niceness ORDERFLOW_REPLICA_NICE, see
// replica.Process) whose logs go to logs, and returns the function that
// stops it after a last sync (call it once the database is closed, so
// that the replica has its last writes). It runs beside the serve group,
// not in it: a replica that fails, or a replicator process that dies, is
// counted and retried and never stops the pipeline, and /ready does not
// depend on it.
func startReplica(cfg config, log *slog.Logger, reg prometheus.Registerer, logs io.Writer) (stop func() error, err error) {
	if cfg.ReplicaURL == "" || cfg.awsMode() {
		return func() error { return nil }, nil
	}
	p, err := replica.StartProcess(cfg.DBPath, cfg.replicaConfig(log.With("component", "replica")), replica.ProcessConfig{
		Command:  replicatorCommand,
		Nice:     cfg.ReplicaNice,
		Logs:     logs,
		LogLevel: cfg.LogLevel,
	}, reg)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_REPLICA_URL: %w", err)
	}
	return p.Stop, nil
}

// replicatorCommand is orderflow replicate, run from this very binary
// (/proc/self/exe: the one running, even if an upgrade replaced the file
// since), with this process's environment (the AWS credential chain of an
// s3:// replica reads it).
func replicatorCommand() *exec.Cmd {
	self := "/proc/self/exe"
	if runtime.GOOS != "linux" {
		self, _ = os.Executable()
	}
	cmd := exec.Command(self, "replicate")
	cmd.Args[0] = os.Args[0]
	return cmd
}

// replicate is orderflow replicate, the replicator process that
// startReplica starts: its job comes on stdin, its status goes to stdout,
// its logs to stderr (replica.ServeProcess). It ignores ctx, which ends at
// SIGINT or SIGTERM: its parent tells it when to stop, after its own
// shutdown.
func replicate(stdin io.Reader, stdout, stderr io.Writer) error {
	return replica.ServeProcess(stdin, stdout, func(level string) *slog.Logger {
		return newLogger(config{LogLevel: level}, stderr).With("component", "replica")
	})
}

// sqliteOptions are the embedded mode's database options of cfg. The api
// command's store is written by processor processes too, so it watches
// their writes. Only the serve command, the one process writing its file,
// has a commit window: a transaction held open for it holds the file's
// write lock, and in the split mode the other processes' writes would
// wait behind it (docs/design-decisions.md).
func sqliteOptions(cfg config, log *slog.Logger, reg prometheus.Registerer) sqlite.Options {
	commitWindow := time.Duration(-1)
	if cfg.command == "serve" {
		commitWindow = window(cfg.CommitWindow)
	}
	return sqlite.Options{
		VisibilityTimeout: cfg.VisibilityTimeout,
		MaxReceives:       cfg.MaxReceives,
		IdempotencyTTL:    cfg.IdempotencyTTL,
		Logger:            log,
		Registerer:        reg,
		WatchOtherWriters: cfg.command == "api",
		WatchInterval:     cfg.WatchInterval,
		WatchMaxInterval:  cfg.WatchMaxInterval,
		CommitWindow:      commitWindow,
	}
}

// newBacklog returns the api's estimate of the backlog for
// ORDERFLOW_MAX_BACKLOG: the queue's messages waiting and in flight (the
// orders accepted and not yet acknowledged by a processor), counted every
// backlogInterval by each api process. Every mode counts the one queue
// that all its api processes share, so the bound holds across them, give
// or take what the others accepted since the last count.
func (b *backend) newBacklog(log *slog.Logger) *orderflow.Backlog {
	return orderflow.NewBacklog(func(ctx context.Context) (int, error) {
		d, err := b.queue.Depth(ctx)
		return d.Visible + d.InFlight, err
	}, b.backlogInterval, log)
}

// ping checks both the queue and the store.
func (b *backend) ping(ctx context.Context) error {
	if err := b.store.Ping(ctx); err != nil {
		return err
	}
	return b.queue.Ping(ctx)
}

// stockSeeder sets and reads stock, which orderflow.Store leaves to each
// adapter; Stock returns ENotFound for a SKU never stocked.
type stockSeeder interface {
	SetStock(ctx context.Context, sku string, quantity int) error
	Stock(ctx context.Context, sku string) (int, error)
}

// seedStock stocks every SKU of spec ("sku:qty,...") that has no stock
// record yet, so restarts never reset stock that orders have used.
func seedStock(ctx context.Context, s stockSeeder, spec string) error {
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sku, qty, ok := strings.Cut(part, ":")
		n, err := strconv.Atoi(qty)
		if !ok || err != nil || n < 0 {
			return fmt.Errorf("ORDERFLOW_STOCK: %q is not sku:quantity", part)
		}
		_, err = s.Stock(ctx, sku)
		switch orderflow.ErrorCode(err) {
		case "":
			continue
		case orderflow.ENotFound:
			if err := s.SetStock(ctx, sku, n); err != nil {
				return fmt.Errorf("seed stock %s: %w", sku, err)
			}
		default:
			return fmt.Errorf("read stock %s: %w", sku, err)
		}
	}
	return nil
}
