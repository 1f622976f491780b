package sqlite

import (
	"context"
	"log/slog"
	"time"

	zs "zombiezen.com/go/sqlite"
)

// checkpointInterval is how often the checkpointer copies committed pages
// from the WAL into the database file. Each checkpoint ends with an fsync
// of the database file, and while that flushes, the syncer's fsync of the
// WAL waits behind it on the disk: every commit stalls. Small, frequent
// checkpoints keep those stalls short. Measured with cmd/bench at half
// load (ack p99): every 100 ms 28–32 ms, every 20 ms 18–20 ms, every
// second 44 ms (fewer, longer stalls); see docs/design-decisions.md.
const checkpointInterval = 20 * time.Millisecond

// While space is low (after a full disk, see runCheckpointer) the WAL is
// made to start again from its beginning, reusing the file in place,
// whenever it holds more than lowSpaceWALFrames (1 MiB of 4 KiB pages), so
// that it takes no more of the disk. Otherwise the WAL restarts only when
// a write begins after a complete checkpoint, and steady readers (status
// polls) can keep every checkpoint short of complete: the WAL grew 3 MB a
// second past its usual 16 MB under such a load, taking whatever space
// had been freed. The writer does it (see DB.restartWAL), between two
// transactions: a RESTART checkpoint needs the write lock, which the
// writer holds nearly all the time under load.
const lowSpaceWALFrames = 256

// lowSpaceEnd is the free space (statfs) at which low space ends: room
// for a WAL that a long reader made grow to journal_size_limit, twice.
const lowSpaceEnd = 128 << 20

// resumeFree is the free space (statfs) that writes refused for a full
// disk wait for once the WAL is truncated: room for a WAL of
// lowSpaceWALFrames and the pages it adds to the database file.
const resumeFree = 2 << 20

// runCheckpointer checkpoints the WAL in the background, on its own
// connection, so that the writer's commits only append to the WAL and
// fsync it. (Every wal_autocheckpoint frames the writer's own automatic
// checkpoint copies the few frames left, so that the WAL can restart; see
// writerPragmas.) PASSIVE never blocks the writer or the readers. A tick
// does nothing when the last checkpoint copied the whole WAL and nothing
// was committed since, and the statements are prepared once: parsing the
// PRAGMA on every tick was a third of the checkpointer's CPU.
//
// With a replica (package replica), Litestream holds a read transaction
// open on the file: these checkpoints still copy pages into the database
// file, but the WAL restarts only at Litestream's own checkpoints, once it
// has copied every frame (see the replica package's doc).
//
// After a write or a checkpoint failed for a full disk, writes are
// refused (see DB.diskFull) and the checkpointer tries, every
// fullRetryInterval, a TRUNCATE checkpoint, which copies the whole WAL
// into the database file and cuts the WAL to zero bytes: the space freed
// meanwhile goes to the database file first, the WAL's space is given
// back, and then writes are let through again, in low space (see
// lowSpaceWALFrames) until the file system has lowSpaceEnd free.
func (db *DB) runCheckpointer() {
	ticker := time.NewTicker(checkpointInterval)
	defer ticker.Stop()
	var done uint64 // db.commits before the last complete checkpoint
	var lastTry, lastStatfs time.Time
	for {
		select {
		case <-db.closing:
			return
		case <-ticker.C:
		}
		if db.health.refusing() != nil {
			if time.Since(lastTry) >= fullRetryInterval {
				lastTry = time.Now()
				db.truncateWhileFull()
			}
			continue
		}
		low := db.health.lowOnSpace()
		if low && time.Since(lastStatfs) >= time.Second {
			lastStatfs = time.Now()
			if free, err := freeSpace(db.path); err == nil && free >= lowSpaceEnd {
				db.health.setLowOnSpace(false)
				db.logger.Info("sqlite disk has room again", "free_bytes", free)
			}
		}
		n := db.commits.Load()
		if n == done {
			continue
		}
		frames, complete, err := checkpoint(db.checkpointStmt)
		if hook := db.afterCheckpoint.Load(); hook != nil {
			(*hook)()
		}
		if err == nil && low && frames > lowSpaceWALFrames {
			db.walTooLong.Store(true)
		}
		if err != nil {
			db.checkpointFailed(err)
		}
		if complete {
			done = n
		}
	}
}

// truncateWhileFull tries a TRUNCATE checkpoint and lets writes through
// again if it succeeds and the file system has resumeFree available: with
// less, the first write would fail again (a WAL that is empty already
// truncates at once), and the program would go back and forth between
// refusing and failing.
func (db *DB) truncateWhileFull() {
	_, complete, err := checkpoint(db.truncateStmt)
	if err != nil {
		db.checkpointFailed(err)
		return
	}
	if !complete {
		return
	}
	free, err := freeSpace(db.path)
	if err == nil && free < resumeFree {
		return
	}
	db.health.clearFull()
	db.logger.Info("sqlite WAL checkpointed and truncated after a full disk; writes resume", "free_bytes", free)
}

// checkpointFailed logs a failed checkpoint (at most once per
// RepeatedLogInterval) and, if the database file could not grow, starts
// refusing writes: every commit would only make the WAL, which cannot
// start again until a checkpoint completes, take more of the free space.
func (db *DB) checkpointFailed(err error) {
	if resultCode(err) == zs.ResultFull {
		db.diskFull(err)
		return
	}
	db.observe(unavailable(err, "sqlite checkpoint"))
	db.logs.Log(context.Background(), slog.LevelWarn, "checkpoint", "sqlite checkpoint", "err", err)
}

// checkpoint runs a prepared PRAGMA wal_checkpoint once and returns how
// many frames the WAL holds and whether it copied all of them (a reader
// still using older frames can hold some back).
func checkpoint(st *zs.Stmt) (frames int64, complete bool, err error) {
	defer st.Reset()
	row, err := st.Step()
	if err != nil || !row {
		return 0, false, err
	}
	// The row is (busy, frames in the WAL, frames checkpointed).
	frames = st.ColumnInt64(1)
	return frames, st.ColumnInt64(0) == 0 && frames == st.ColumnInt64(2), nil
}

// restartWAL runs on the writer, between transactions: when the
// checkpointer found the WAL too long while space is low, it checkpoints
// the whole WAL, waiting for the readers still using it, so that the next
// transaction writes the WAL from its beginning again.
func (db *DB) restartWAL() {
	if !db.walTooLong.Swap(false) {
		return
	}
	if _, err := db.ws.restartWAL.Exec(); err != nil {
		db.checkpointFailed(err)
	}
}

// checkpointer is the checkpointer's connection and its statements.
type checkpointer struct {
	cconn                        *zs.Conn
	checkpointStmt, truncateStmt *zs.Stmt
}

// openCheckpointer opens the checkpointer's connection and prepares its
// statements; closing the connection finalizes them.
func openCheckpointer(path string) (checkpointer, error) {
	conn, err := zs.OpenConn(path, zs.OpenReadWrite)
	if err != nil {
		return checkpointer{}, err
	}
	conn.SetBusyTimeout(10 * time.Second)
	c := checkpointer{cconn: conn}
	for _, p := range []struct {
		dst  **zs.Stmt
		mode string
	}{{&c.checkpointStmt, "PASSIVE"}, {&c.truncateStmt, "TRUNCATE"}} {
		if *p.dst, err = conn.Prepare("PRAGMA wal_checkpoint(" + p.mode + ")"); err != nil {
			conn.Close()
			return checkpointer{}, err
		}
	}
	return c, nil
}
