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
// fsync it. (The writer's own automatic checkpoint is set high, as a safety
// net should this goroutine fall behind.) PASSIVE never blocks the writer
// or the readers. A tick with no commit since the last checkpoint does
// nothing, and the statement is prepared once: parsing the PRAGMA on every
// tick was a third of the checkpointer's CPU.
func (db *DB) runCheckpointer() {
	ticker := time.NewTicker(checkpointInterval)
	defer ticker.Stop()
	var done uint64 // db.commits when the last checkpoint began
	for {
		select {
		case <-db.closing:
			return
		case <-ticker.C:
			n := db.commits.Load()
			if n == done {
				continue
			}
			done = n
			if err := checkpoint(db.checkpointStmt); err != nil {
				db.logger.Warn("sqlite checkpoint", "err", err)
			}
		}
	}
}

// checkpoint runs the prepared PRAGMA wal_checkpoint(PASSIVE) once.
func checkpoint(st *zs.Stmt) error {
	defer st.Reset()
	for {
		row, err := st.Step()
		if err != nil || !row {
			return err
		}
	}
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
