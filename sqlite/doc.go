// Package sqlite implements the embedded mode's Queue, DeadLetters and Store
// on one SQLite file, with the pure-Go SQLite of modernc.org/sqlite: readers
// through its database/sql driver, the single write connection directly
// through zombiezen.com/go/sqlite (see wconn.go for why).
//
// # Writes: one writer, group commit
//
// The writer, its syncer and the checkpointer are this package's
// performance machinery; their state is the type groupCommit
// (groupcommit.go), whose doc comment states the budget each one buys.
//
// Every write (Accept, Send, Receive, Delete, ChangeVisibility, Transition,
// Reserve, Release, RecordCharge, a RateLimiter's Take, …) is a small
// operation handed to a single writer goroutine that owns the only write
// connection. The writer runs operations in one transaction as they arrive
// and commits when the syncer (below) is idle, or at 512 operations: while
// an fsync runs, committing could not release anyone sooner, and every
// commit rewrites to the WAL each page it dirtied, so the operations that
// arrive meanwhile join the open transaction instead of making commits of
// their own (this cut the writer's CPU per order by about a fifth; see
// docs/design-decisions.md). After the COMMIT each caller gets its own
// result (a RateLimiter's take gets its own as soon as it ran; see
// writeAtRun). An operation that fails does not affect the others: a domain error
// (conflict, mismatch, not found, invalid) is decided before the operation
// writes anything, so it needs no rollback; an operation that fails after
// writing, or with a driver error, makes the writer roll the transaction
// back and run the batch again with every operation inside its own
// SAVEPOINT, so that the failing one rolls back alone. (Savepoints are not
// used on the fast path because their statement journal copies every page an
// operation touches, which cost about a fifth of the writer's time.) Reads
// (GetOrder, ListOrders, Stock, Depth, ListDead, Charges, …) use a pool of
// read-only WAL connections and never wait for the writer. A background
// connection checkpoints the WAL (PASSIVE, every 20 ms until it has copied
// every commit) so that commits only append.
//
// The processor works through a WorkQueue, the database as its queue and
// store in one: its receive also moves each message's order from PENDING
// to PROCESSING in the same write, and its StartOrder answers for those
// orders from what the receive did: one write per order fewer than a
// Receive followed by a StartOrder.
//
// # Durability
//
// With the default Options.Synchronous "FULL", a nil error from a write that
// is acknowledged to someone outside (Accept, Send, SetStock,
// Redrive, Purge) means it is committed and fsynced: it survives a kill -9
// of the process and an OS crash or power loss. A receive (Receive, and a
// WorkQueue's) that hands out a message enqueued by a transaction not
// yet fsynced also returns only once fsynced: the processor may act
// outside on what it hands out (a payment gateway), and that fsync covers
// the message's Accept too. Each queue row records which open DB (a
// random id per Open) enqueued it in which of its transactions, and the
// syncer the last transaction its fsync covered; a receive whose messages
// were all enqueued here before that (a backlog) returns at commit. A
// message from another process sharing the file (the split mode) or from
// an earlier run makes the receive wait, since only the writer's own
// fsyncs are known. The processor's bookkeeping (Delete, ChangeVisibility,
// Transition, Reserve, Release, RecordCharge) returns as soon as it is
// committed to the WAL: that already survives a kill -9, its batch is
// fsynced by the syncer's next round like any other, and since the WAL is
// a sequence, any later fsync covers it too. After a power loss in between,
// the database is as it was before such a write and the processor redoes
// the step; every step is idempotent. (Readers see every commit before its
// fsync either way; what returns at commit is only that the processor's
// next step does not wait for the fsync.) This saves each order three
// waits for an fsync. Durability is implemented as pipelined group commit
// rather than with SQLite's own synchronous=FULL:
//
//   - the write connection runs with synchronous=NORMAL, so COMMIT appends
//     the batch's frames to the WAL with write(2) but does not fsync;
//   - a syncer goroutine then fsyncs the WAL file through its own
//     descriptor (fsync flushes a file whatever descriptor wrote it), once
//     for every batch committed since its last fsync, and only then
//     releases those batches' callers that wait for durability;
//   - meanwhile the writer already runs the next batch.
//
// SQLite's FULL would fsync inside COMMIT, leaving the writer idle for the
// whole fsync (about 5 ms here) on every batch; measured on this 2-core
// machine that capped Accept at about 5-7k orders/s, where the pipelined
// form keeps up with NORMAL (see BenchmarkAccept). Recovery after a crash
// replays the WAL up to the last intact commit, so what survives is always
// a prefix of the commits, and every acknowledged commit is in it. WAL
// checkpoints run with SQLite's own syncing (they fsync the WAL before
// copying and the database file after), and the WAL is reused from its
// start only after a complete checkpoint, so acknowledged frames are never
// overwritten before they are in the database file.
//
// Options.Synchronous "NORMAL" skips the fsync: a write is acknowledged once
// it is in the WAL file, i.e. in the operating system's page cache. That is
// still durable against a kill -9 of the process (the next open replays the
// WAL) but not against an OS crash or power loss, where the last commits
// may be lost.
//
// # Queue semantics
//
// The queue mirrors SQS: a received message is hidden for the visibility
// timeout, every receive counts and gets a fresh receipt (older receipts no
// longer Delete or ChangeVisibility it), and a receive that finds a message
// already received MaxReceives times moves it to the dead-letter table
// instead, leaving its order as it is. WatchDead hands each dead message
// not yet handled to the processor's dead-letter watch, which ends its
// order (processor.Processor.WatchDeadLetters decides how), and marks it
// handled in the table once that succeeded; the receive that dead-letters
// wakes the watch as it commits, so the order ends within milliseconds,
// and a message dead-lettered just before a crash is handled when the
// watch starts again. Receive long-polls: it wakes as soon as a Send or
// Accept commits, and polls every 50 ms for messages whose visibility
// timeout ran out.
//
// # Idle costs nothing
//
// An idle database is not written: a receive asks a reader whether any
// message is visible before it hands a write to the writer, the janitor
// asks a reader whether any idempotency record has expired (or any rate
// limit's bucket is full again) before it deletes, and the syncer skips the fsync when no transaction since the
// last one wrote anything (a receive that lost a race for the message, a
// replayed Accept). An idle server with its receivers long-polling does
// no write transaction and no fsync.
package sqlite
