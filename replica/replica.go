// Package replica replicates the embedded mode's SQLite file continuously
// to a directory or an S3-compatible bucket, and rebuilds the file from
// there, with Litestream (github.com/benbjohnson/litestream) linked into
// orderflow and run in a child process of the server: orderflow replicate,
// the same binary, started at a lower CPU priority (Process).
//
// # Why the library, in a process of its own
//
// Litestream is a Go library as well as a program. orderflow links it
// rather than running the litestream binary beside it because
//
//   - it runs on the same pure-Go SQLite (modernc.org/sqlite) as
//     orderflow, so the file's POSIX locks are shared by one library and
//     nothing else must be installed, configured or kept alive: the
//     setting ORDERFLOW_REPLICA_URL is the whole configuration, on a VM, in
//     the compose file and in a Kubernetes pod (no sidecar);
//   - orderflow drives each sync itself (Replicator.Run) and so knows
//     exactly which writes the replica holds: the lag metric is "every
//     write older than this is in the replica", not a guess;
//   - it adds 6.6 MB to the stripped binary (43.3 to 49.9 MB): the file and
//     S3 replica clients, on the AWS SDK orderflow already links, and the
//     LTX format; Litestream's other clients (GCS, Azure, SFTP, NATS, ...),
//     its VFS and its command are not compiled in.
//
// The Replicator runs in a child process rather than in the server's own
// because of what it costs at saturation: 15 % of the server's CPU at the
// bench's peak (reading and checksumming the WAL, encoding LTX files,
// compacting them), which in-process took 10-13 % of the accepted orders
// per second. A process of its own can run at a lower priority
// (ORDERFLOW_REPLICA_NICE, DefaultNice): while the cores are saturated the
// api and the processor get them first and the replica falls behind, and
// it catches up as soon as the load leaves it CPU (docs/performance.md has
// the rates and the lag of each niceness). The child is the server's own
// binary, so nothing more is installed; its job comes on its stdin, one
// JSON line, and its status (active, the covered time, errors) goes back
// on its stdout after each sync, from which the parent keeps the same
// metrics a Replicator would: an operator sees one process with the
// replica's metrics and logs. The child ends when its stdin does (after
// a last sync: the parent closes it once its database is closed) and, on
// Linux, is killed with its parent (PR_SET_PDEATHSIG); the parent starts
// it again if it dies.
//
// Litestream's root package registers its own metrics with Prometheus'
// default registry and imports net/http/pprof (which registers on
// http.DefaultServeMux); orderflow serves neither, so both stay unseen.
//
// # Litestream and orderflow's checkpointer
//
// Litestream must read every WAL frame before the WAL is restarted (its
// start overwritten). It holds a read transaction open all the time, and
// SQLite restarts the WAL only when no reader uses it, so orderflow's
// PASSIVE checkpoints (the checkpointer every 20 ms, the writer's
// wal_autocheckpoint) copy frames into the database file but cannot
// restart the WAL while Litestream runs: Litestream restarts it itself,
// at its own checkpoints (every 1,000 pages of WAL), after it copied the
// frames and while it holds the write lock. TestBusyWriterLosesNoFrames
// drives a busy writer through many such restarts and compares the
// restored replica with the database.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/benbjohnson/litestream"
	lsfile "github.com/benbjohnson/litestream/file"
	lss3 "github.com/benbjohnson/litestream/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// DefaultSyncInterval is how often the replicator ships new WAL frames.
// With it the documented RPO is 1 s: a write is in the replica within one
// interval plus the time of the upload.
const DefaultSyncInterval = 500 * time.Millisecond

// Config says where to replicate to and how.
type Config struct {
	// URL is file:///absolute/dir or s3://bucket/prefix.
	URL string
	// S3Endpoint, if set, is the S3 API's address (AWS_ENDPOINT_URL_S3, or
	// AWS_ENDPOINT_URL): MinIO, moto_server, another provider. Requests
	// then use path-style addressing. Credentials come from the standard
	// AWS chain.
	S3Endpoint string
	// Region is the bucket's region (AWS_REGION).
	Region string
	// SyncInterval is how often new writes are shipped; DefaultSyncInterval
	// if zero.
	SyncInterval time.Duration
	// Logger receives Litestream's logs and the replicator's; none if nil.
	Logger *slog.Logger
}

// CheckURL reports whether s is a replica URL orderflow can use.
func CheckURL(s string) error {
	_, err := newClient(Config{URL: s})
	return err
}

// newClient makes the Litestream client of cfg's URL.
func newClient(cfg Config) (litestream.ReplicaClient, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, orderflow.Errorf(orderflow.EInvalid, "replica URL %q: %v", cfg.URL, err)
	}
	switch u.Scheme {
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
			return nil, orderflow.Errorf(orderflow.EInvalid, "replica URL %q: a file URL names an absolute directory, file:///var/backups/orderflow", cfg.URL)
		}
		return lsfile.NewReplicaClient(filepath.Clean(u.Path)), nil
	case "s3":
		if u.Host == "" || u.RawQuery != "" || u.User != nil {
			return nil, orderflow.Errorf(orderflow.EInvalid, "replica URL %q: an S3 URL is s3://bucket/prefix (endpoint and credentials come from the AWS settings)", cfg.URL)
		}
		c := lss3.NewReplicaClient()
		c.Bucket, c.Path, c.Region = u.Host, strings.Trim(u.Path, "/"), cfg.Region
		if cfg.S3Endpoint != "" {
			c.Endpoint, c.ForcePathStyle = cfg.S3Endpoint, true
		}
		if cfg.Logger != nil {
			c.SetLogger(cfg.Logger)
		}
		return c, nil
	}
	return nil, orderflow.Errorf(orderflow.EInvalid, "replica URL %q: must start with file:// or s3://", cfg.URL)
}

// Replicator ships the writes to one SQLite file to its replica. Every
// process that has a replica configured runs one; of the processes
// sharing a file (the split mode's api and processors), one at a time
// replicates, the one holding the lock file PATH-replica.lock, and the
// others stand by to take over when it stops or dies.
type Replicator struct {
	path   string
	cfg    Config
	client litestream.ReplicaClient
	log    *slog.Logger
	logs   *orderflow.LogLimiter

	// covered is the time (Unix ns) before which every write to the file
	// is known to be in the replica: the start of the last successful
	// sync, New's time until then.
	covered atomic.Int64
	synced  atomic.Bool // a sync succeeded: covered is a sync's start
	active  atomic.Bool
	errors  atomic.Uint64
	// onStatus, if set, receives r's status after each change (the
	// replicator process reports it to its parent, see ServeProcess).
	onStatus func(status)
}

// status is what a Replicator reports of itself to the process that
// keeps its metrics.
type status struct {
	Active bool `json:"active"`
	// Covered is the Replicator's covered time (Unix ns) once a sync
	// succeeded; 0 before.
	Covered int64  `json:"covered,omitempty"`
	Errors  uint64 `json:"errors"` // since it started
}

// notify hands r's status to onStatus, if set.
func (r *Replicator) notify() {
	if r.onStatus == nil {
		return
	}
	s := status{Active: r.active.Load(), Errors: r.errors.Load()}
	if r.synced.Load() {
		s.Covered = r.covered.Load()
	}
	r.onStatus(s)
}

// fail counts a failed attempt and reports it.
func (r *Replicator) fail() {
	r.errors.Add(1)
	r.notify()
}

// synced records a sync that succeeded and began at start.
func (r *Replicator) syncedAt(start time.Time) {
	r.covered.Store(start.UnixNano())
	r.synced.Store(true)
	r.notify()
}

// New returns a Replicator of the database file at path, with its metrics
// registered with reg (none if nil): orderflow_replica_lag_seconds,
// orderflow_replica_errors_total and orderflow_replica_active.
func New(path string, cfg Config, reg prometheus.Registerer) (*Replicator, error) {
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	r := &Replicator{path: path, cfg: cfg, client: client, log: cfg.Logger,
		logs: orderflow.NewLogLimiter(cfg.Logger, orderflow.RepeatedLogInterval)}
	r.covered.Store(time.Now().UnixNano()) // what is older was the job of an earlier run
	if err := registerMetrics(reg, func() float64 { return float64(r.errors.Load()) }, r.Lag, r.active.Load); err != nil {
		return nil, err
	}
	return r, nil
}

// registerMetrics registers with reg (nothing if nil) the replica's
// metrics, read from errors, lag and active when scraped.
func registerMetrics(reg prometheus.Registerer, errors func() float64, lag func(time.Time) time.Duration, active func() bool) error {
	if reg == nil {
		return nil
	}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "orderflow_replica_errors_total",
			Help: "Syncs of the SQLite file to its replica (ORDERFLOW_REPLICA_URL) that failed, and exits of the replicator process not asked for; each is retried.",
		}, errors),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orderflow_replica_lag_seconds",
			Help: "How far the replica is behind the SQLite file: 0 when every write is in it, else the age of the oldest write that may not be (0 in a process standing by).",
		}, func() float64 { return lag(time.Now()).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orderflow_replica_active",
			Help: "1 in the process that replicates the SQLite file, 0 in one standing by (another process sharing the file replicates).",
		}, func() float64 {
			if active() {
				return 1
			}
			return 0
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register replica metrics: %w", err)
		}
	}
	return nil
}

// Active reports whether r replicates: it holds the lock and its replica
// is set up.
func (r *Replicator) Active() bool { return r.active.Load() }

// mtimeSlack is how much earlier than the write a file's mtime may be.
const mtimeSlack = 20 * time.Millisecond

// Lag is how far the replica is behind the file at now: zero when nothing
// was written since the start of the last successful sync, else the time
// since then (the oldest write not known to be in the replica is at most
// that old). Zero in a process standing by.
func (r *Replicator) Lag(now time.Time) time.Duration {
	return lagOf(r.path, r.active.Load(), time.Unix(0, r.covered.Load()), now)
}

// lagOf is the lag at now of the replica of the file at path, with every
// write before covered in it; zero if !active.
func lagOf(path string, active bool, covered, now time.Time) time.Duration {
	if !active {
		return 0
	}
	fi, err := os.Stat(path + "-wal")
	// A file's mtime comes from a coarse clock (a few ms behind): a write
	// just after the sync began may carry an earlier time.
	if err == nil && fi.ModTime().Before(covered.Add(-mtimeSlack)) {
		return 0
	}
	return max(0, now.Sub(covered))
}

// Run replicates until ctx ends, then ships what is left (for up to 15
// s) and returns that last sync's error. A ctx that has ended already when
// Run starts still gets that last sync, unless another process holds the
// lock. A replica that cannot be set up
// or written (a bucket not there, credentials refused, a full disk) never
// stops it: each failure is counted in orderflow_replica_errors_total,
// logged, and tried again at the next interval, while the lag grows.
func (r *Replicator) Run(ctx context.Context) error {
	unlock := r.lock(ctx)
	if unlock == nil {
		return nil // ctx ended while standing by
	}
	defer unlock()
	r.active.Store(true)
	defer r.active.Store(false)
	r.notify()
	store, db := r.open(ctx)
	if store == nil {
		return nil
	}
	r.log.Info("replicating the database", "path", r.path, "replica", r.cfg.URL, "interval", r.cfg.SyncInterval.String())
	r.syncLoop(ctx, db)
	// Store.Close ships the last writes (a final sync) before it returns.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	start := time.Now()
	err := store.Close(cctx)
	r.logs.Flush()
	if err != nil {
		r.fail()
		return fmt.Errorf("replica %s: last sync: %w", r.cfg.URL, err)
	}
	r.syncedAt(start)
	return nil
}

// open sets Litestream up on the file, trying again every interval until
// it succeeds or ctx ends (nil). The first attempt is made even if ctx
// has ended, for Run's last sync.
func (r *Replicator) open(ctx context.Context) (*litestream.Store, *litestream.DB) {
	t := time.NewTicker(r.cfg.SyncInterval)
	defer t.Stop()
	for first := true; ; first = false {
		db := litestream.NewDB(r.path)
		db.MonitorInterval = 0 // syncLoop drives the syncs
		rep := litestream.NewReplicaWithClient(db, r.client)
		rep.MonitorEnabled = false
		db.Replica = rep
		store := litestream.NewStore([]*litestream.DB{db}, litestream.DefaultCompactionLevels)
		store.Logger = r.log
		db.SetLogger(r.log)
		store.SetShutdownSyncTimeout(10 * time.Second)
		octx, cancel := ctx, context.CancelFunc(func() {})
		if first {
			octx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		}
		err := store.Open(octx)
		cancel()
		if err == nil {
			return store, db
		}
		r.fail()
		r.logs.Log(ctx, slog.LevelWarn, "replica open", "replica cannot be set up; retrying", "replica", r.cfg.URL, "err", err)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
	}
}

// syncLoop syncs db to its replica every interval until ctx ends.
func (r *Replicator) syncLoop(ctx context.Context, db *litestream.DB) {
	t := time.NewTicker(r.cfg.SyncInterval)
	defer t.Stop()
	for {
		start := time.Now()
		err := db.SyncAndWait(ctx)
		switch {
		case err == nil:
			r.syncedAt(start)
		case ctx.Err() != nil:
			return
		default:
			r.fail()
			r.logs.Log(ctx, slog.LevelWarn, "replica sync", "replica sync failed; retrying", "replica", r.cfg.URL, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lockRetry is how often a process standing by tries to take over.
const lockRetry = time.Second

// lock takes the file's replica lock, standing by while another process
// holds it, and returns the function that releases it; nil if ctx ended
// first. A lock file that cannot be opened or locked is counted as an
// error and tried again like a busy one.
func (r *Replicator) lock(ctx context.Context) (unlock func()) {
	for logged := false; ; {
		f, err := tryLock(r.path)
		if err == nil {
			return func() { f.Close() } // closing releases the lock
		}
		switch {
		case !errors.Is(err, syscall.EWOULDBLOCK):
			r.fail()
			r.logs.Log(ctx, slog.LevelWarn, "replica lock", "replica lock file cannot be taken; retrying", "path", r.path, "err", err)
		case !logged:
			r.log.Info("another process replicates the database; standing by", "path", r.path)
			logged = true
			r.notify() // a replicator process's parent shows no lag of its own
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(lockRetry):
		}
	}
}

// tryLock takes the replica lock of the database at path, PATH-replica.lock,
// without waiting: EWOULDBLOCK if another process holds it. Closing the
// file releases it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path+"-replica.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
