package sqlite

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
	zs "zombiezen.com/go/sqlite"
)

// Readiness in the embedded mode is about writes: a file that can be read
// but not written (a full disk, a corrupted table, a lock held by another
// process) must take the program out of rotation, and put it back once a
// write commits again. Ping answers from the outcome of the writer's last
// transaction that wrote, however old, while it is a success and the file
// system has probeBelowFree bytes or more (a statfs, no write). It writes
// a probe through the writer, whose outcome is recorded like any other,
// only when nothing has committed since Open, when the last write failed
// (to see the store recover by itself), or when space is that short. So a
// healthy idle program writes nothing however often /ready is asked, and
// one whose disk filled while idle reports it at the next /ready.
const probeBelowFree = 1 << 20

// fullRetryInterval is how often, while writes are refused for a full
// disk, the checkpointer tries to copy the WAL into the database file and
// truncate it (see runCheckpointer). Each try that fails rewrites pages of
// the WAL into the database file until the disk refuses, hence not every
// checkpointInterval.
const fullRetryInterval = 250 * time.Millisecond

// writeHealth is what the writer and the checkpointer know about writing
// the file. Safe for concurrent use.
type writeHealth struct {
	mu  sync.Mutex
	at  time.Time // when err was recorded; zero: nothing recent
	err error     // the last transaction's outcome: nil if it committed
	// full is set while writes are refused because the disk is full
	// (atomic: every write looks at it); low from then until the file
	// system has room again (see runCheckpointer).
	full atomic.Pointer[orderflow.Error]
	low  bool
	// fault is the first corruption seen; it stays until the file is
	// repaired and the program restarted.
	fault error
}

// last returns the last outcome; ok is false if none was recorded since
// Open or since writes resumed after a full disk.
func (h *writeHealth) last() (err error, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.at.IsZero() {
		return nil, false
	}
	return h.err, true
}

func (h *writeHealth) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.at, h.err = time.Now(), err
}

// unwritable returns why the file cannot take writes for now (a
// corruption, a full disk), or nil.
func (h *writeHealth) unwritable() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fault != nil {
		return h.fault
	}
	return h.refusing()
}

// refusing returns the error that writes get at once, without touching
// the file, while the disk is full.
func (h *writeHealth) refusing() error {
	if err := h.full.Load(); err != nil {
		return err
	}
	return nil
}

// setFull starts refusing writes; it reports whether they were accepted
// until now.
func (h *writeHealth) setFull(cause error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full.Load() != nil {
		return false
	}
	h.full.Store(orderflow.Unavailable(cause, "the disk holding the sqlite database is full; writes resume once space is freed"))
	h.low = true
	return true
}

func (h *writeHealth) lowOnSpace() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.low
}

func (h *writeHealth) setLowOnSpace(low bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.low = low
}

// clearFull accepts writes again; the next Ping probes.
func (h *writeHealth) clearFull() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.full.Store(nil)
	h.at, h.err = time.Time{}, nil
}

// setFault records the first corruption and reports whether it is the
// first.
func (h *writeHealth) setFault(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fault != nil {
		return false
	}
	h.fault = err
	return true
}

// Ping checks that the file can be read and can take a write: the
// writer's last outcome or a probe (see probeBelowFree). It returns
// EStoreUnavailable once the file was found corrupted, EUnavailable while
// the disk is full or writes fail otherwise.
func (db *DB) Ping(ctx context.Context) error {
	select {
	case <-db.closing:
		return errClosed()
	default:
	}
	if err := db.health.unwritable(); err != nil {
		return err
	}
	if db.syncFailed.Load() {
		return errSyncFailed()
	}
	var one int
	if err := db.rs.ping.QueryRowContext(ctx).Scan(&one); err != nil {
		return db.observe(unavailable(err, "ping sqlite"))
	}
	db.probeMu.Lock()
	defer db.probeMu.Unlock()
	err, ok := db.health.last()
	if !ok || err != nil || db.shortOfSpace() {
		err = db.write(ctx, func(w *wtx) error { return w.probe() })
	}
	if err == nil {
		return nil
	}
	if why := db.health.unwritable(); why != nil {
		return why
	}
	return &orderflow.Error{Code: orderflow.ErrorCode(err), Detail: "sqlite cannot commit a write: " + orderflow.ErrorDetail(err), Err: err}
}

// shortOfSpace reports whether the file system holding the database has
// less than probeBelowFree bytes free (or cannot say).
func (db *DB) shortOfSpace() bool {
	free, err := freeSpace(db.path)
	return err != nil || free < probeBelowFree
}

// probe writes a row and deletes it again in the same transaction: the
// commit writes the pages it touched to the WAL (and the syncer fsyncs
// it) although nothing changes. It uses the orders table, the largest, so
// that a damaged root of it or of its index shows; no order has an empty
// id.
func (w *wtx) probe() error {
	if _, err := w.exec(w.probeInsert); err != nil {
		return unavailable(err, "write probe")
	}
	if _, err := w.exec(w.probeDelete); err != nil {
		return unavailable(err, "write probe")
	}
	return nil
}

// noteOutcome records the outcome of batch's transaction, whose errors
// are final: a failure of the file (any SQLite error that is not a bug in
// a statement), or nil if an operation wrote and committed. (A
// transaction that changed nothing, such as a receive that found no
// message, commits without writing to the file and proves nothing.) It
// logs the failure (at most once per RepeatedLogInterval, with a count),
// starts refusing writes on a full disk, and records a corruption.
func (db *DB) noteOutcome(batch []*writeOp) {
	var failed error
	wrote := false
	for _, op := range batch {
		err := op.outcome()
		if err == nil {
			wrote = wrote || op.wrote
			continue
		}
		if !isStorageFault(err) {
			continue
		}
		db.observe(err)
		if failed == nil {
			failed = err
		}
	}
	if failed == nil && !wrote {
		return
	}
	db.health.record(failed)
	switch {
	case failed == nil, isCorrupt(failed): // logged by observe
	case resultCode(failed) == zs.ResultFull:
		db.diskFull(failed)
	default:
		db.logs.Log(context.Background(), slog.LevelWarn, "write", "sqlite write failed", "err", failed)
	}
}

// diskFull starts refusing writes: a write that fails for a full disk
// leaves its frames in the WAL, and a WAL that cannot be checkpointed
// (the database file cannot grow either) is never restarted, so every
// write that is let through takes more of whatever space is freed, and the
// checkpoint that would free the WAL never gets it. While writes are
// refused the checkpointer tries to checkpoint and truncate the WAL (see
// runCheckpointer); once that succeeds, writes are let through again.
func (db *DB) diskFull(cause error) {
	if db.health.setFull(cause) {
		db.logger.Warn("sqlite disk full: refusing writes until space is freed and the WAL is checkpointed", "err", cause)
	}
}

// observe records a corruption in err (logged once, at ERROR; Ping then
// fails for good) and returns err.
func (db *DB) observe(err error) error {
	if isCorrupt(err) && db.health.setFault(err) {
		db.logger.Error("sqlite database file is corrupted: restore it from a backup (see docs/operations.md); /ready answers 503 from now on", "err", err)
	}
	return err
}
