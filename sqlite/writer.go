package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow"
)

// maxBatch caps how many operations share one transaction, so that one
// commit never holds callers for long.
const maxBatch = 512

// windowBatch is the number of operations at which a transaction commits
// without waiting for the rest of the commit window (see windowOp).
const windowBatch = 32

// writeOp is one caller's unit of work for the writer.
type writeOp struct {
	ctx  context.Context
	fn   func(w *wtx) error
	err  error
	done chan struct{}
	// atCommit: the caller may go on once the commit is in the WAL,
	// before its fsync (see writeAtCommit); released records that it
	// was told.
	atCommit bool
	released bool
	// atRun: the caller may go on as soon as the operation ran in the
	// open transaction (see writeAtRun). Once released, the operation is
	// the caller's: the writer no longer runs it or writes its fields,
	// and keeps a later failure of its transaction in lateErr.
	atRun   bool
	lateErr error
	// wrote: op ran a writing statement that changed rows (see
	// noteOutcome).
	wrote bool
}

// wtx is what an operation sees: the write statements and the time it
// runs at. Operations must only use it while they run.
type wtx struct {
	*writeStmts
	db  *DB
	now time.Time // set by runOne for each operation
	// notify is set by an operation that enqueued messages, so that
	// waiting receivers are woken once the batch commits.
	notify bool
	// wrote is set (by exec) once an operation has run a writing
	// statement. Operations run every write through it.
	wrote bool
	// seq is the transaction's number (see DB.commits).
	seq uint64
	// releaseAtCommit is set by a write operation whose caller may go on
	// at commit after all (see receiveOnce).
	releaseAtCommit bool
	// changed lists the orders the transaction moved (see transitionOrder),
	// for the watchers, told once it commits.
	changed []orderflow.OrderID
}

// write runs fn in the writer's next transaction and returns once that
// transaction has committed and, with Synchronous FULL, the WAL holding it
// is fsynced (or fn failed). Results that fn stores in variables of the
// caller are valid only when write returns nil.
func (db *DB) write(ctx context.Context, fn func(w *wtx) error) error {
	return db.submit(ctx, &writeOp{fn: fn})
}

// writeAtCommit is write for the processor's own bookkeeping (status
// transitions, reservations, the gateway's ledger, deletes): it
// returns once the transaction has committed to the WAL, without waiting
// for the fsync that makes it durable against power loss. Nothing outside
// the database has been told of such a write, and the WAL is a sequence:
// when a later commit is fsynced (an Accept's, or this order's next step)
// so is this one, and if power fails before that, the database comes back
// as it was before the write and the processor redoes the step (every step
// is idempotent, and readers could see the write only as a committed state
// that later steps build on). Writes that are acknowledged to someone
// outside (Accept's 202, Send, the operator's dlq commands) use write, and
// so does Receive, which hands out messages the processor may act on
// outside the database (see receiveOnce).
func (db *DB) writeAtCommit(ctx context.Context, fn func(w *wtx) error) error {
	return db.submit(ctx, &writeOp{fn: fn, atCommit: true})
}

// writeAtRun is write for the rate limiter's takes (see RateLimiter.Take):
// it returns as soon as fn ran in the writer's open transaction, before
// that transaction commits. The transaction holds the file's write lock
// (BEGIN IMMEDIATE), so no other process can read or write what fn did
// until it commits, and this process's writer runs one operation at a
// time: fn's outcome is final for every reader that comes after it, unless
// the transaction is rolled back, in which case its writes are lost (the
// writer does not run a released operation again). Only for state whose
// loss in a failed transaction is harmless.
func (db *DB) writeAtRun(ctx context.Context, fn func(w *wtx) error) error {
	return db.submit(ctx, &writeOp{fn: fn, atRun: true})
}

func (db *DB) submit(ctx context.Context, op *writeOp) error {
	select {
	case <-db.closing:
		return errClosed()
	default:
	}
	if db.syncFailed.Load() {
		return errSyncFailed()
	}
	if err := db.health.refusing(); err != nil {
		return err
	}
	ctx, end := db.startWrite(ctx, op.atCommit)
	err := db.submitOp(ctx, op)
	if end != nil {
		end(err)
	}
	return err
}

func (db *DB) submitOp(ctx context.Context, op *writeOp) error {
	start := time.Now()
	op.ctx, op.done = ctx, make(chan struct{})
	select {
	case db.ops <- op:
	case <-db.closing:
		return errClosed()
	case <-ctx.Done():
		return unavailable(ctx.Err(), "sqlite write")
	}
	select {
	case <-op.done:
		switch {
		case op.atRun: // not a wait for a commit or an fsync
		case op.released:
			db.metrics.waitCommit.Observe(time.Since(start).Seconds())
		default:
			db.metrics.waitFsync.Observe(time.Since(start).Seconds())
		}
		return op.err
	case <-db.writerDone:
		// The writer finishes every operation it took before it exits.
		select {
		case <-op.done:
			return op.err
		default:
			return errClosed()
		}
	case <-ctx.Done():
		// The operation may still commit; the caller has stopped waiting.
		return unavailable(ctx.Err(), "sqlite write")
	}
}

// runWriter is the only goroutine that writes. It runs the waiting
// operations in one transaction and commits it, then hands the batch to
// the syncer, which releases the callers once the commit is on disk;
// meanwhile the next transaction runs. See runTx for when it commits.
func (db *DB) runWriter() {
	synced := make(chan struct{})
	go db.runSyncer(synced)
	defer func() {
		close(db.committed)
		<-synced
		close(db.writerDone)
	}()
	for {
		select {
		case op := <-db.ops:
			db.restartWAL()
			db.runTx(op)
		case <-db.closing:
			// Flush what callers queued before Close.
			batch := make([]*writeOp, 0, maxBatch)
			for {
				select {
				case op := <-db.ops:
					batch = append(batch, op)
					if len(batch) == maxBatch {
						db.commitBatch(batch)
						batch = make([]*writeOp, 0, maxBatch)
					}
				default:
					if len(batch) > 0 {
						db.commitBatch(batch)
					}
					return
				}
			}
		}
	}
}

// runTx runs first and the operations that follow it in one transaction.
// It commits once the syncer is idle and the commit window after the
// previous commit has passed (see Options.CommitWindow), and until then
// keeps taking new operations into the open transaction (up to
// maxBatch): a commit made while an fsync is running could not release
// its callers any sooner, and every commit writes each page it dirtied to
// the WAL again, so waiting turns several small commits into one. With
// Synchronous NORMAL the syncer is always idle and only the window holds
// a commit back.
//
// Operations run as they arrive; the first that fails after writing (see
// commitBatch) makes runTx roll back and run the batch again with
// savepoints.
func (db *DB) runTx(first *writeOp) {
	db.txBegan = time.Now()
	batch := make([]*writeOp, 1, 64)
	batch[0] = first
	if _, err := db.ws.begin.Exec(); err != nil {
		db.failAll(batch, unavailable(err, "begin sqlite transaction"))
		db.handOver(batch)
		return
	}
	w := db.newWtx()
	notify, wrote := false, false
	ran := 0
	for {
		for ; ran < len(batch); ran++ {
			op := batch[ran]
			if !db.runFast(op, w) {
				// Partial writes, or a driver error that may have rolled
				// back the whole transaction: start again with savepoints.
				db.abort(batch, nil)
				resetErrs(batch)
				db.runBatch(batch, true)
				db.handOver(batch)
				return
			}
			notify = notify || (op.err == nil && w.notify)
			wrote = wrote || w.wrote
		}
		if len(batch) >= maxBatch {
			break
		}
		select {
		case op := <-db.ops:
			batch = append(batch, op)
			continue
		default:
		}
		if db.unsynced.Load() == 0 {
			if op, ok := db.windowOp(len(batch)); ok {
				batch = append(batch, op)
				continue
			}
			break
		}
		select {
		case op := <-db.ops:
			batch = append(batch, op)
			continue
		case <-db.syncerIdle:
			continue // look again: more operations may have arrived
		case <-db.closing:
		}
		break
	}
	db.lastCommit = time.Now()
	if _, err := db.ws.commit.Exec(); err != nil {
		db.abort(batch, unavailable(err, "commit sqlite transaction"))
	} else {
		db.committedBatch(batch, notify, wrote)
		db.watch.hub.Notify(w.changed...)
	}
	db.handOver(batch)
}

// windowOp waits, while the commit window after the previous commit is
// open (Options.CommitWindow), for an operation to join the open
// transaction of n operations, and returns it; false once the window has
// closed (at once when the writer was idle for longer) or the DB is
// closing. There is no window while a backlog waits (see DB.backlog) or
// once the transaction holds windowBatch operations: then the commits are
// full without it, and each step of the processor, which waits for the
// commit of its write, would only wait longer, at the cost of the rate it
// drains the backlog at (a window kept on for every load more than halved
// it: 9,100–9,800 against 3,950–4,030 orders/s).
func (db *DB) windowOp(n int) (*writeOp, bool) {
	wait := db.opts.CommitWindow - time.Since(db.lastCommit)
	if wait <= 0 || n >= windowBatch || db.backlog.Load() {
		return nil, false
	}
	if db.window == nil {
		db.window = time.NewTimer(wait)
	} else {
		db.window.Reset(wait)
	}
	defer db.window.Stop()
	select {
	case op := <-db.ops:
		return op, true
	case <-db.window.C:
	case <-db.closing:
	}
	return nil, false
}

// committedBatch runs once batch's transaction has committed: it records
// whether the transaction wrote, wakes waiting receivers if an operation
// enqueued (notify) and releases the callers that need not wait for the
// fsync (see writeAtCommit).
func (db *DB) committedBatch(batch []*writeOp, notify, wrote bool) {
	if wrote {
		// Before commits grows: a syncer that has read commits then finds
		// this transaction in lastWrote (see runSyncer).
		db.lastWrote.Store(db.commits.Load() + 1)
	}
	db.commits.Add(1)
	db.metrics.txWrites.Observe(float64(len(batch)))
	if notify {
		db.arrivals.broadcast()
	}
	for _, op := range batch {
		if op.atCommit && !op.released {
			op.released = true
			close(op.done)
		}
	}
}

// runFast runs op inside the open transaction without a savepoint. It
// returns false when the transaction must be rolled back: op failed after
// it wrote, or with a driver error.
func (db *DB) runFast(op *writeOp, w *wtx) bool {
	if err := op.ctx.Err(); err != nil {
		op.err = unavailable(err, "sqlite write")
		return true
	}
	db.runOne(op, w)
	return op.err == nil || (!w.wrote && isDomain(op.err))
}

// runOne runs op in the open transaction, at the current time, and records
// its outcome in op; w's per-operation flags then describe op.
func (db *DB) runOne(op *writeOp, w *wtx) {
	w.now = db.now()
	w.notify, w.wrote, w.releaseAtCommit = false, false, false
	op.err = runOp(op, w)
	op.wrote = w.wrote
	if op.err == nil && w.releaseAtCommit {
		op.atCommit = true
	}
	if op.atRun {
		op.released = true
		close(op.done)
	}
	if hook := db.afterOp.Load(); hook != nil {
		(*hook)()
	}
}

// newWtx is what the operations of the transaction just begun see.
func (db *DB) newWtx() *wtx {
	return &wtx{writeStmts: &db.ws, db: db, seq: db.commits.Load() + 1}
}

// handOver gives a finished batch to the syncer, which releases its
// callers.
func (db *DB) handOver(batch []*writeOp) {
	db.traceTx(batch, db.txBegan)
	db.noteOutcome(batch)
	db.unsynced.Add(1)
	db.committed <- batch
}

// runSyncer releases committed batches. With durable commits it first
// fsyncs the WAL, once for every batch committed so far, so that a caller
// hears of success only when its commit survives a power loss.
func (db *DB) runSyncer(done chan<- struct{}) {
	defer close(done)
	var pending [][]*writeOp
	for batch := range db.committed {
		pending = append(pending[:0], batch)
	more:
		for {
			select {
			case b, ok := <-db.committed:
				if !ok {
					break more
				}
				pending = append(pending, b)
			default:
				break more
			}
		}
		var err error
		// Every transaction counted so far has written its frames to the
		// WAL (commits grows after its COMMIT), so this fsync covers them.
		upTo := db.commits.Load()
		// A transaction that wrote nothing (a receive that found the
		// queue empty, a replayed Accept) appends nothing to the WAL:
		// when every one that wrote is fsynced already, so are these
		// batches, and an fsync would only cost the disk. Whatever such
		// an operation read was committed by an earlier transaction, so
		// it is covered too.
		if db.wal != nil && db.lastWrote.Load() > db.synced.Load() {
			if hook := db.beforeSync.Load(); hook != nil {
				(*hook)()
			}
			start := time.Now()
			err = db.wal.sync()
			db.metrics.fsync.Observe(time.Since(start).Seconds())
			if err != nil {
				// After a failed fsync the kernel may have dropped the dirty
				// pages, and a later fsync can succeed without them: refuse
				// every further write; a restart recovers from the WAL.
				db.logger.Error("sqlite fsync of the WAL failed; refusing further writes", "err", err)
				err = unavailable(err, "sync sqlite WAL")
				db.syncFailed.Store(true)
			}
		}
		if err == nil {
			db.synced.Store(upTo)
		}
		for _, b := range pending {
			for _, op := range b {
				if op.released {
					continue
				}
				if op.err == nil {
					op.err = err
				}
				close(op.done)
			}
		}
		if db.unsynced.Add(-int64(len(pending))) == 0 {
			select {
			case db.syncerIdle <- struct{}{}:
			default:
			}
		}
		clear(pending)
	}
}

// commitBatch runs batch in one transaction, commits it and hands it to
// the syncer, which releases the callers. An operation that fails must not affect the others:
//
//   - An operation that fails before it wrote anything (every domain error:
//     conflict, mismatch, not found, invalid) simply reports its error; the
//     others go on in the same transaction. This is the common case, and it
//     needs no savepoint, whose statement journal copies every page an
//     operation touches.
//   - If an operation fails after it wrote, or with a driver error, the
//     whole transaction is rolled back and the batch is run again with
//     each operation inside its own SAVEPOINT, so that the failing one
//     rolls back alone.
func (db *DB) commitBatch(batch []*writeOp) {
	db.txBegan = time.Now()
	if !db.runBatch(batch, false) {
		resetErrs(batch)
		db.runBatch(batch, true)
	}
	db.handOver(batch)
}

// runBatch runs and commits batch, with a savepoint around each operation
// if savepoints is set. Without savepoints it returns false, having rolled
// back, when an operation failed after writing; the caller then retries
// with savepoints. Otherwise it returns true with every op.err final.
func (db *DB) runBatch(batch []*writeOp, savepoints bool) bool {
	if _, err := db.ws.begin.Exec(); err != nil {
		db.failAll(batch, unavailable(err, "begin sqlite transaction"))
		return true
	}
	w := db.newWtx()
	notify, wrote := false, false
	for _, op := range batch {
		if op.released {
			continue // ran in the transaction rolled back; see writeAtRun
		}
		if err := op.ctx.Err(); err != nil {
			op.err = unavailable(err, "sqlite write")
			continue
		}
		if savepoints {
			if _, err := db.ws.savepoint.Exec(); err != nil {
				db.abort(batch, unavailable(err, "sqlite savepoint"))
				return true
			}
		}
		db.runOne(op, w)
		switch {
		case op.err == nil && savepoints:
			if _, err := db.ws.release.Exec(); err != nil {
				db.abort(batch, unavailable(err, "sqlite release savepoint"))
				return true
			}
		case op.err != nil && savepoints:
			_, err1 := db.ws.rollbackTo.Exec()
			_, err2 := db.ws.release.Exec()
			if err := errors.Join(err1, err2); err != nil {
				db.abort(batch, unavailable(err, "sqlite rollback to savepoint"))
				return true
			}
		case op.err != nil && (w.wrote || !isDomain(op.err)):
			// Partial writes, or a driver error that may have rolled back
			// the whole transaction (SQLite does so on some I/O errors).
			db.abort(batch, nil)
			return false
		}
		notify = notify || (op.err == nil && w.notify)
		wrote = wrote || w.wrote
	}
	if _, err := db.ws.commit.Exec(); err != nil {
		db.abort(batch, unavailable(err, "commit sqlite transaction"))
		return true
	}
	db.committedBatch(batch, notify, wrote)
	db.watch.hub.Notify(w.changed...)
	return true
}

// abort rolls the whole transaction back and gives err (if not nil) to
// every operation that has not failed on its own. After some errors (a
// full disk, an I/O error, out of memory; in a statement or in COMMIT)
// SQLite has rolled the transaction back already, and a ROLLBACK would
// only fail with "cannot rollback - no transaction is active".
func (db *DB) abort(batch []*writeOp, err error) {
	if !db.wconn.AutocommitEnabled() {
		if _, rerr := db.ws.rollback.Exec(); rerr != nil {
			db.logs.Log(context.Background(), slog.LevelError, "rollback", "sqlite rollback", "err", rerr)
		}
	}
	if err != nil {
		db.failAll(batch, err)
	}
}

func (db *DB) failAll(batch []*writeOp, err error) {
	for _, op := range batch {
		switch {
		case op.released:
			if op.lateErr == nil {
				op.lateErr = err
			}
		case op.err == nil:
			op.err = err
		}
	}
}

// resetErrs clears the outcomes of batch's operations before it runs
// again; those released to their callers keep theirs.
func resetErrs(batch []*writeOp) {
	for _, op := range batch {
		if !op.released {
			op.err = nil
		}
	}
}

// outcome is op's final error as the writer knows it: a released
// operation's own, or the failure of its transaction after it ran.
func (op *writeOp) outcome() error {
	if op.lateErr != nil {
		return op.lateErr
	}
	return op.err
}

// exec runs a writing statement and records that the operation wrote.
func (w *wtx) exec(st *wstmt, args ...any) (execResult, error) {
	w.wrote = true
	return st.Exec(args...)
}

// runOp runs one operation, turning a panic into an EInternal error so that
// a bug in one operation cannot stop the writer.
func runOp(op *writeOp, w *wtx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &orderflow.Error{Code: orderflow.EInternal, Detail: "sqlite write operation panicked", Err: fmt.Errorf("%v", r)}
		}
	}()
	return op.fn(w)
}

// isDomain reports whether err is a domain outcome (decided before any
// write) rather than a failure of the database.
func isDomain(err error) bool {
	switch orderflow.ErrorCode(err) {
	case orderflow.EInvalid, orderflow.ENotFound, orderflow.EConflict, orderflow.EMismatch:
		return true
	}
	return false
}
