package sqlite

import (
	"context"
	"time"
)

// ExecOnWriter runs query on the write connection, between batches; tests
// use it to simulate a full disk with PRAGMA max_page_count.
func (db *DB) ExecOnWriter(ctx context.Context, query string) error {
	_, err := db.queryOnWriter(ctx, query)
	return err
}

// WriterPragma reads PRAGMA name on the write connection, between batches.
func (db *DB) WriterPragma(ctx context.Context, name string) (int64, error) {
	return db.queryOnWriter(ctx, "PRAGMA "+name)
}

// queryOnWriter runs query on the write connection in the writer's next
// transaction and returns the first column of its first row (0 without).
func (db *DB) queryOnWriter(ctx context.Context, query string) (int64, error) {
	var v int64
	err := db.write(ctx, func(w *wtx) error {
		w.wrote = true // it may (the writer must then fsync)
		st, _, err := db.wconn.PrepareTransient(query)
		if err != nil {
			return err
		}
		defer st.Finalize()
		row, err := st.Step()
		if row {
			v = st.ColumnInt64(0)
		}
		return err
	})
	return v, err
}

// SetBeforeSync makes the syncer call hook before each fsync of the WAL.
func (db *DB) SetBeforeSync(hook func()) { db.beforeSync.Store(&hook) }

// Migrations are the schema steps, for tests that build an older file.
var Migrations = migrations

// SetStartedLimit sets how many started orders q holds for StartOrder.
func SetStartedLimit(q *WorkQueue, n int) { q.started.limit = n }

// SetAfterOp makes the writer call hook after each operation it ran.
func (db *DB) SetAfterOp(hook func()) { db.afterOp.Store(&hook) }

// SetAfterCheckpoint makes the checkpointer call hook after each PASSIVE
// checkpoint.
func (db *DB) SetAfterCheckpoint(hook func()) { db.afterCheckpoint.Store(&hook) }

// SetPollInterval sets how long a waiting Receive waits at most before it
// looks again; call it before the first Receive.
func (db *DB) SetPollInterval(d time.Duration) { db.poll = d }

// SetBeforeWait makes a Receive that found nothing call hook before it
// waits.
func (db *DB) SetBeforeWait(hook func()) { db.beforeWait.Store(&hook) }

// WindowBatch is the number of operations at which a transaction commits
// without waiting for the rest of the commit window.
const WindowBatch = windowBatch
