package sqlite

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// groupCommit is the state of the embedded mode's write path, the one
// piece of performance machinery in this package: the writer goroutine
// and the syncer (writer.go, wal.go) and the checkpointer (checkpoint.go).
// The rest of the package reaches it only through DB.write and
// DB.writeAtCommit. Each mechanism stays for the budget it buys, measured
// with cmd/bench and the package's benchmarks on a 2-core machine (see
// docs/design-decisions.md and docs/performance.md):
//
//   - Group commit. One writer owns the only write connection; operations
//     join the open transaction while the previous fsync runs, and it
//     commits when the syncer is idle or at maxBatch operations: about 30
//     writes per transaction and one transaction per fsync, where
//     committing whenever no write waited gave 3.5–3.9 writes per
//     transaction and 9–37 % fewer accepted orders. The commits cost 26 µs
//     of the 214 µs of server CPU per accepted order.
//   - The commit window. While the processor keeps up (its last receive
//     found fewer messages than it asked for) a transaction that could
//     commit stays open until CommitWindow (2 ms) after the previous
//     commit, or until it holds windowBatch operations: at 2,400 orders/s
//     27 instead of 10 writes per transaction and 420 instead of 1,270
//     fsyncs a second, 389–420 against 470–489 µs of server CPU per order,
//     for 3 ms more end-to-end latency at the median. While a backlog
//     waits there is no window, and the drain keeps its rate.
//   - The syncer. COMMIT runs with synchronous=NORMAL and a goroutine of its
//     own fsyncs the WAL after it, once per group (7 µs per order), while
//     the writer runs the next batch; SQLite's FULL, fsyncing inside every
//     COMMIT, left the writer idle for the whole fsync and capped Accept at
//     about 5–7k orders/s (BenchmarkAccept). The processor's bookkeeping
//     is released at commit, before that fsync: 366 → 304 µs per order.
//   - Takes of the rate limiter return as soon as they ran in the open
//     transaction (writeAtRun), not at its commit: the transaction's
//     write lock already orders them against every other process, and the
//     order's Accept then joins the same transaction, so the limit costs
//     no commit, fsync or wait of its own (BenchmarkAccept: 53–59 against
//     58–65 cpu-µs per order without it).
//   - The checkpointer. PASSIVE checkpoints every 20 ms on their own
//     connection, so that commits only append to the WAL (20 µs per order):
//     ack p99 at half the peak 18–20 ms, against 28–32 ms every 100 ms and
//     44 ms every second, since each checkpoint's fsync of the database
//     file stalls the WAL's fsync behind it.
type groupCommit struct {
	// writer identifies this open DB in the queue rows it writes (random,
	// never 0); commits numbers its transactions: the one open is
	// commits+1 (wtx.seq), and synced is the last one an fsync of the WAL
	// has covered.
	writer  int64
	commits atomic.Uint64
	synced  atomic.Uint64
	// lastWrote is the number of the last transaction that wrote (see
	// committedBatch); the syncer fsyncs only when it is above synced.
	lastWrote atomic.Uint64

	ops        chan *writeOp          // from callers to the writer
	committed  chan []*writeOp        // from the writer to the syncer
	unsynced   atomic.Int64           // batches handed to the syncer and not yet released
	syncerIdle chan struct{}          // the syncer found nothing more to sync
	wal        *walFile               // fsynced by the syncer; nil when not durable
	syncFailed atomic.Bool            // set for good when an fsync of the WAL failed
	walTooLong atomic.Bool            // set by the checkpointer for the writer (see restartWAL)
	beforeSync atomic.Pointer[func()] // tests: runs before each fsync
	afterOp    atomic.Pointer[func()] // tests: runs after each operation the writer ran
	// tests: runs after each PASSIVE checkpoint
	afterCheckpoint atomic.Pointer[func()]
	writerDone      chan struct{} // closed when writer and syncer have drained and exited
	// txBegan is when the writer began its current transaction, for its
	// span (see traceTx); the writer's alone.
	txBegan time.Time
	// lastCommit is when the writer last committed, and window its timer
	// for the commit window (see windowOp); the writer's alone.
	lastCommit time.Time
	window     *time.Timer
	// backlog is set by a receive that handed out as many messages as it
	// was asked for (more may wait: the processor is behind) and cleared
	// by one that found fewer; while it is set the writer commits without
	// the commit window (see windowOp).
	backlog atomic.Bool
	// tracer starts the write and transaction spans (tracing.go).
	tracer trace.Tracer

	// The checkpointer's connection and its statements.
	checkpointer
}

func newGroupCommit() groupCommit {
	return groupCommit{
		writer:     rand.Int64N(math.MaxInt64) + 1,
		ops:        make(chan *writeOp, 4096),
		committed:  make(chan []*writeOp, 64),
		syncerIdle: make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
}
