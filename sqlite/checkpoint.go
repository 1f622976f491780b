package sqlite

import (
	"context"
	"database/sql"
	"time"
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
// or the readers.
func (db *DB) runCheckpointer() {
	ticker := time.NewTicker(checkpointInterval)
	defer ticker.Stop()
	ctx := context.Background()
	for {
		select {
		case <-db.closing:
			return
		case <-ticker.C:
			var busy, frames, copied int
			err := db.cdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
			if err != nil {
				db.logger.Warn("sqlite checkpoint", "err", err)
			}
		}
	}
}

func openCheckpointer(path string) (*sql.DB, error) {
	cdb, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	cdb.SetMaxOpenConns(1)
	cdb.SetMaxIdleConns(1)
	cdb.SetConnMaxIdleTime(0)
	return cdb, nil
}
