package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	msqlite "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
	zs "zombiezen.com/go/sqlite"
)

// Defaults for Options fields left zero.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxReceives       = 5
	DefaultIdempotencyTTL    = orderflow.MinIdempotencyTTL
	DefaultJanitorInterval   = time.Minute
	// DefaultCommitWindow is Options.CommitWindow's default: at 2,400
	// orders/s on 2 cores it cut the server's CPU per order by 12–28 %,
	// for 3–4 ms of end-to-end latency at the median
	// (docs/performance.md).
	DefaultCommitWindow = 2 * time.Millisecond
	DefaultSynchronous  = "FULL"
)

// Options configures a DB. Zero fields take the defaults above.
type Options struct {
	// VisibilityTimeout is how long a received message stays hidden.
	VisibilityTimeout time.Duration
	// MaxReceives is how many receives a message gets; the next receive
	// moves it to the dead-letter table.
	MaxReceives int
	// IdempotencyTTL is how long idempotency records are kept. The janitor
	// purges records older than this, never sooner.
	IdempotencyTTL time.Duration
	// JanitorInterval is how often the janitor looks for expired records.
	JanitorInterval time.Duration
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Logger receives warnings (dead-lettered messages, janitor errors).
	Logger *slog.Logger
	// Synchronous is FULL (default: a write is reported only once it is
	// fsynced, durable against power loss) or NORMAL (reported once it is
	// written to the WAL, durable against a process crash only); see the
	// package documentation.
	Synchronous string
	// MustExist makes Open fail with ENotFound ("no database at PATH")
	// when the file does not exist, instead of creating it: for operator
	// commands, which must not leave an empty database behind.
	MustExist bool
	// Registerer, if not nil, receives the writer's metrics
	// (sqlite_write_wait_seconds, sqlite_wal_fsync_seconds,
	// sqlite_transaction_writes). One DB per registry.
	Registerer prometheus.Registerer
	// TracerProvider makes the spans of writes whose caller is in a
	// recording span, and of their transactions (see tracing.go).
	// Default: none.
	TracerProvider trace.TracerProvider
	// WatchOtherWriters makes Watch also learn of the transitions other
	// processes write to the file (the split mode's api), by a batched
	// read of the watched orders every WatchInterval (default 1 s),
	// doubling while nothing changes up to WatchMaxInterval (default 5 s).
	// Without it, Watch tells of this process's writes only.
	WatchOtherWriters               bool
	WatchInterval, WatchMaxInterval time.Duration
	// CommitWindow is the shortest time between two commits of the
	// writer while writes keep coming and the processor keeps up: a
	// transaction that could commit sooner (the last fsync has ended)
	// stays open until this long after the previous commit, and the
	// writes that arrive meanwhile join it. Each commit writes every page
	// it dirtied to the WAL and costs an fsync, so at moderate rates,
	// where each would carry a few writes, fewer and fuller commits cost
	// the server less CPU; a write that finds the writer idle longer than
	// this commits at once, so a quiet database adds no latency. There is
	// no window while a receive of this DB finds a backlog (it got all the
	// messages it asked for) or once the transaction holds 32 operations:
	// the processor's steps each wait for a commit, and a window then
	// only slows the drain. The open transaction holds the file's write
	// lock, so a DB beside other writing processes should turn it off.
	// Zero takes DefaultCommitWindow; negative commits as soon as the
	// disk is free.
	CommitWindow time.Duration
}

// DB is the embedded queue and store on one SQLite file. It is safe for
// concurrent use. Close it to flush pending writes and stop its goroutines.
type DB struct {
	opts   Options
	now    func() time.Time
	logger *slog.Logger

	wconn *zs.Conn // the write connection, owned by the writer goroutine
	ws    writeStmts
	rdb   *sql.DB // read-only connections
	rs    readStmts
	path  string // of the database file
	// The writer, its syncer and the checkpointer (see groupCommit).
	groupCommit
	closing    chan struct{}  // closed by Close
	background sync.WaitGroup // janitor and checkpointer
	closeOnce  sync.Once
	closeErr   error

	arrivals notifier // broadcast when messages are enqueued
	// seenEmpty is the arrivals' generation (notifier.waitGen) as of the
	// latest look that found no visible message (see receive).
	seenEmpty atomic.Uint64
	dead      notifier // broadcast when a receive dead-letters messages (see WatchDead)
	// poll is how long a waiting Receive waits at most before it looks
	// again (pollInterval; tests lengthen it), beforeWait a test's hook
	// run when a Receive found nothing and is about to wait.
	poll       time.Duration
	beforeWait atomic.Pointer[func()]
	metrics    *metrics

	health  writeHealth           // what Ping reports (see health.go)
	probeMu sync.Mutex            // one write probe at a time
	logs    *orderflow.LogLimiter // repeated storage errors
	watch   *watcher              // see Watch
}

var (
	_ orderflow.Intake      = (*DB)(nil)
	_ orderflow.Store       = (*DB)(nil)
	_ orderflow.Queue       = (*DB)(nil)
	_ orderflow.DeadLetters = (*DB)(nil)
)

// Open opens (creating if needed, unless opts.MustExist) the database file
// at path, migrates its schema and starts the writer and the janitor.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		return nil, orderflow.Errorf(orderflow.EInvalid, "sqlite path %q must name a file and contain no ? or #", path)
	}
	if opts.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, orderflow.Errorf(orderflow.ENotFound, "no database at %s", path)
		}
	}
	if opts.VisibilityTimeout <= 0 {
		opts.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if opts.MaxReceives <= 0 {
		opts.MaxReceives = DefaultMaxReceives
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if opts.JanitorInterval <= 0 {
		opts.JanitorInterval = DefaultJanitorInterval
	}
	switch {
	case opts.CommitWindow == 0:
		opts.CommitWindow = DefaultCommitWindow
	case opts.CommitWindow < 0:
		opts.CommitWindow = 0
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Synchronous = strings.ToUpper(opts.Synchronous)
	switch opts.Synchronous {
	case "":
		opts.Synchronous = DefaultSynchronous
	case "FULL", "NORMAL":
	default:
		return nil, orderflow.Errorf(orderflow.EInvalid, "sqlite synchronous must be FULL or NORMAL, got %q", opts.Synchronous)
	}

	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register sqlite metrics: %w", err)
	}
	db := &DB{
		metrics:     m,
		opts:        opts,
		path:        path,
		now:         opts.Now,
		logger:      opts.Logger,
		groupCommit: newGroupCommit(),
		closing:     make(chan struct{}),
		arrivals:    newNotifier(),
		dead:        newNotifier(),
		poll:        pollInterval,
		logs:        orderflow.NewLogLimiter(opts.Logger, orderflow.RepeatedLogInterval),
	}
	if err := db.openConns(ctx, path); err != nil {
		db.closeConns()
		return nil, damagedAtOpen(err, path)
	}
	db.tracer = tracerOf(opts.TracerProvider)
	db.watch = db.newWatcher()
	if opts.Registerer != nil {
		for _, c := range db.watch.collectors() {
			if err := opts.Registerer.Register(c); err != nil {
				db.closeConns()
				return nil, fmt.Errorf("register sqlite metrics: %w", err)
			}
		}
	}
	go db.runWriter()
	db.background.Go(db.runJanitor)
	db.background.Go(db.runCheckpointer)
	return db, nil
}

func (db *DB) openConns(ctx context.Context, path string) error {
	if err := prepareFile(ctx, path); err != nil {
		return err
	}
	var err error
	db.wconn, err = openWriter(path)
	if err != nil {
		return err
	}
	if err := db.ws.prepare(db.wconn); err != nil {
		return err
	}
	if err := checkFile(db.wconn, &db.ws, path); err != nil {
		return err
	}
	if db.opts.Synchronous == "FULL" {
		// The write connection runs with synchronous=NORMAL, so COMMIT only
		// writes the WAL; the syncer fsyncs it before callers are told.
		if db.wal, err = openWAL(path); err != nil {
			return unavailable(err, "open sqlite WAL of %s", path)
		}
	}

	db.rdb, err = sql.Open("sqlite", path+
		"?_pragma=busy_timeout(10000)&_pragma=cache_size(-16384)&_pragma=query_only(1)")
	if err != nil {
		return unavailable(err, "open sqlite %s for reading", path)
	}
	db.checkpointer, err = openCheckpointer(path)
	if err != nil {
		return unavailable(err, "open sqlite %s for checkpoints", path)
	}
	readers := max(4, 2*runtime.GOMAXPROCS(0))
	db.rdb.SetMaxOpenConns(readers)
	db.rdb.SetMaxIdleConns(readers)
	db.rdb.SetConnMaxIdleTime(0)
	return db.rs.prepare(ctx, db.rdb)
}

func (db *DB) closeConns() error {
	var errs []error
	db.ws.close()
	db.rs.close()
	if db.wconn != nil {
		errs = append(errs, db.wconn.Close())
	}
	if db.watch != nil {
		db.watch.close()
	}
	if db.rdb != nil {
		errs = append(errs, db.rdb.Close())
	}
	if db.cconn != nil {
		errs = append(errs, db.cconn.Close())
	}
	errs = append(errs, db.wal.close())
	return errors.Join(errs...)
}

// openBusyTimeout bounds how long prepareFile waits for other processes
// that are preparing the same file, like the connections' busy_timeout.
const openBusyTimeout = 10 * time.Second

// prepareFile creates the database file if needed, puts it in WAL mode
// and migrates its schema, through a database/sql connection that it
// closes again. Switching a new file to WAL takes an exclusive lock
// without SQLite's busy handler, so a process that opens the file while
// another one switches it gets SQLITE_BUSY at once: prepareFile tries
// again, for up to openBusyTimeout, so that processes started together on
// a new file all come up.
func prepareFile(ctx context.Context, path string) error {
	deadline := time.Now().Add(openBusyTimeout)
	for {
		err := prepareFileOnce(ctx, path)
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(time.Duration(10+rand.IntN(40)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (the file is locked
// by another connection).
func isBusy(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

func prepareFileOnce(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return unavailable(err, "open sqlite %s", path)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return unavailable(err, "open sqlite %s", path)
	}
	defer conn.Close()
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return unavailable(err, "read journal mode of %s", path)
	}
	if !strings.EqualFold(mode, "wal") {
		return orderflow.Errorf(orderflow.EUnavailable, "sqlite %s: journal mode is %q, want wal", path, mode)
	}
	return migrate(ctx, conn)
}

// writerPragmas configure the write connection. synchronous=NORMAL: COMMIT
// only writes the WAL, and the syncer fsyncs it (see runSyncer) unless the
// database was opened with Synchronous NORMAL. Checkpoints are the
// checkpointer's.
//
// The page cache is deliberately small (8 MiB, 2,000 pages). When a page
// split leaves its pages out of order (siblings allocated at different
// times, or pages reused from the free list that the queue's deletes keep
// filling), SQLite's balance_nonroot swaps them through a temporary
// page number far beyond the end of the file, and the COMMIT that follows
// then scans every slot of the cache's hash table to drop pages past the
// end: a cost per commit that grows with the number of cached pages. With a
// 64 MiB cache it was 6% of BenchmarkProcessCycle's CPU (200 users) and grew
// with the database; with 8 MiB, 1.8%, plus 1.1% of reads of pages that no
// longer fit. The pages the pipeline writes (the newest of each table and
// index) fit easily.
//
// The WAL is restarted (written again from its start) only by a write
// transaction that begins when every frame has been checkpointed. Under a
// steady load the checkpointer rarely catches up with the commits, so it
// is mostly the writer's own automatic checkpoint, run inside a COMMIT
// once the WAL holds wal_autocheckpoint frames, that catches up and lets
// the next transaction restart the WAL; most frames are copied by the
// checkpointer by then, and the catch-up (two fsyncs) costs the writer a
// few ms. That size must stay well below journal_size_limit: a COMMIT that
// restarts a WAL larger than the limit also truncates the file to it. With
// 20,000 frames (80 MB) against 64 MiB every restart, one or two a second,
// truncated 16 MB inside the writer's COMMIT (ftruncate: 16-18 ms, all
// writes waiting), and the WAL then grew again on newly allocated blocks:
// ack p99 at half the load 20-27 ms. With 4,000 frames (16 MB) the file is
// reused in place: 13-19 ms (docs/design-decisions.md). journal_size_limit
// still shrinks the file after a long reader has made it grow.
var writerPragmas = []string{
	"PRAGMA synchronous = NORMAL",
	"PRAGMA cache_size = -8000",
	"PRAGMA temp_store = MEMORY",
	"PRAGMA foreign_keys = 0",
	"PRAGMA wal_autocheckpoint = 4000",
	"PRAGMA journal_size_limit = 67108864",
}

// openWriter opens the write connection on the file prepareFile made.
func openWriter(path string) (*zs.Conn, error) {
	conn, err := zs.OpenConn(path, zs.OpenReadWrite)
	if err != nil {
		return nil, unavailable(err, "open sqlite %s", path)
	}
	// zombiezen waits for ever on a busy database; a writer in another
	// process (api and processor sharing the file) must not hang us: give
	// up after 10 s, like the readers' busy_timeout.
	conn.SetBusyTimeout(10 * time.Second)
	for _, q := range writerPragmas {
		st, _, err := conn.PrepareTransient(q)
		if err == nil {
			_, err = st.Step()
			st.Finalize()
		}
		if err != nil {
			conn.Close()
			return nil, unavailable(err, "sqlite %s: %s", path, q)
		}
	}
	return conn, nil
}

// Close stops the janitor, commits the writes already queued, and closes
// the file. Calls made after Close return EUnavailable errors. Close is
// idempotent.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.closing)
		<-db.writerDone
		db.background.Wait()
		db.logs.Flush()
		if err := db.closeConns(); err != nil {
			db.closeErr = fmt.Errorf("close sqlite: %w", err)
		}
	})
	return db.closeErr
}

func errClosed() error {
	return orderflow.Errorf(orderflow.EUnavailable, "sqlite database is closed")
}

// unavailable wraps an error from the driver. The file being busy, full,
// unreadable or closed is something to retry later, not a bug; a
// corrupted file is not (EStoreUnavailable).
func unavailable(err error, format string, args ...any) error {
	if isCorrupt(err) {
		return corrupted(err, fmt.Sprintf(format, args...))
	}
	return orderflow.Unavailable(err, format, args...)
}

// ms converts t to the stored form, milliseconds since the Unix epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts a stored time back to a UTC time.Time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// notifier wakes every goroutine waiting on the channel that wait returned
// when broadcast is called.
type notifier struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen uint64 // broadcasts so far
}

func newNotifier() notifier { return notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	ch, _ := n.waitGen()
	return ch
}

// waitGen is wait with the number of broadcasts made before ch: a later
// broadcast closes ch and counts more.
func (n *notifier) waitGen() (<-chan struct{}, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch, n.gen
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.gen++
}
