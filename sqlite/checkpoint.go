package sqlite

import (
	"time"

	zs "zombiezen.com/go/sqlite"
)

// checkpointInterval is how often the checkpointer copies committed pages
// from the WAL into the database file. Each checkpoint ends with an fsync
// of the database file, and while that flushes, the syncer's fsync of the
// WAL waits behind it on the disk: every commit stalls. Small, frequent
// checkpoints keep those stalls short. Measured with cmd/bench at half
// load (ack p99): every 100 ms 28–32 ms, every 20 ms 18–20 ms, every
// second 44 ms (fewer, longer stalls); see docs/performance.md.
const checkpointInterval = 20 * time.Millisecond

// runCheckpointer checkpoints the WAL in the background, on its own
// connection, so that the writer's commits only append to the WAL and
// fsync it. (Every wal_autocheckpoint frames the writer's own automatic
// checkpoint copies the few frames left, so that the WAL can restart; see
// writerPragmas.) PASSIVE never blocks the writer or the readers. A tick
// does nothing when the last checkpoint copied the whole WAL and nothing
// was committed since, and the statement is prepared once: parsing the
// PRAGMA on every tick was a third of the checkpointer's CPU.
func (db *DB) runCheckpointer() {
	ticker := time.NewTicker(checkpointInterval)
	defer ticker.Stop()
	var done uint64 // db.commits before the last complete checkpoint
	for {
		select {
		case <-db.closing:
			return
		case <-ticker.C:
			n := db.commits.Load()
			if n == done {
				continue
			}
			complete, err := checkpoint(db.checkpointStmt)
			if err != nil {
				db.logger.Warn("sqlite checkpoint", "err", err)
			}
			if complete {
				done = n
			}
		}
	}
}

// checkpoint runs the prepared PRAGMA wal_checkpoint(PASSIVE) once and
// reports whether it copied every frame of the WAL (a reader still using
// older frames can hold some back).
func checkpoint(st *zs.Stmt) (complete bool, err error) {
	defer st.Reset()
	row, err := st.Step()
	if err != nil || !row {
		return false, err
	}
	// The row is (busy, frames in the WAL, frames checkpointed).
	return st.ColumnInt64(0) == 0 && st.ColumnInt64(1) == st.ColumnInt64(2), nil
}

// openCheckpointer opens the checkpointer's connection and prepares its
// statement; Close finalizes the statement with the connection.
func openCheckpointer(path string) (*zs.Conn, *zs.Stmt, error) {
	conn, err := zs.OpenConn(path, zs.OpenReadWrite)
	if err != nil {
		return nil, nil, err
	}
	conn.SetBusyTimeout(10 * time.Second)
	st, err := conn.Prepare("PRAGMA wal_checkpoint(PASSIVE)")
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, st, nil
}
