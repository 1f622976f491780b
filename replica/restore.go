package replica

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/benbjohnson/litestream"

	"github.com/orderflow/orderflow"
)

// Restore rebuilds the database file at path from cfg's replica: its
// latest state, or the state at time at if that is not zero. The file is
// restored beside path, checked with quick_check and only then renamed to
// path; the WAL, the shared-memory file and Litestream's local state of the
// file it replaces are removed, so that the restored file starts clean and
// a server started on it replicates on from the replica's position.
//
// Restore returns EConflict if a database (or its WAL) is at path and
// force is false, or if a process replicating the file still runs, ENotFound if the replica holds no backup (or none as old
// as at), EInvalid for a bad URL, and EUnavailable when the replica cannot
// be read. Nothing may have the file open while it runs.
func Restore(ctx context.Context, path string, cfg Config, at time.Time, force bool) error {
	if !force {
		for _, p := range []string{path, path + "-wal"} {
			if _, err := os.Lstat(p); err == nil {
				return orderflow.Errorf(orderflow.EConflict, "%s exists; restore replaces a database only with --force (stop every orderflow process using it first)", p)
			}
		}
	}
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return orderflow.Unavailable(err, "create the directory of %s", path)
	}
	// A server replicating the file holds its lock; one starting while the
	// restore runs waits for it.
	lock, err := tryLock(path)
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return orderflow.Errorf(orderflow.EConflict, "an orderflow process is running on %s (it holds %s-replica.lock); stop it before restoring", path, path)
	case err != nil:
		return orderflow.Unavailable(err, "replica lock of %s", path)
	}
	defer lock.Close()
	if err := client.Init(ctx); err != nil {
		return orderflow.Unavailable(err, "replica %s", cfg.URL)
	}
	tmp := fmt.Sprintf("%s.restore-%d", path, time.Now().UnixNano())
	defer os.Remove(tmp)
	// The DB is only the holder of the restore's logger.
	holder := litestream.NewDB(tmp)
	holder.Logger = slog.New(slog.DiscardHandler)
	if cfg.Logger != nil {
		holder.Logger = cfg.Logger
	}
	rep := litestream.NewReplicaWithClient(holder, client)
	opt := litestream.NewRestoreOptions()
	opt.OutputPath, opt.Timestamp, opt.IntegrityCheck = tmp, at, litestream.IntegrityCheckQuick
	if err := rep.Restore(ctx, opt); err != nil {
		if errors.Is(err, litestream.ErrTxNotAvailable) || errors.Is(err, litestream.ErrNoSnapshots) {
			if at.IsZero() {
				return orderflow.Errorf(orderflow.ENotFound, "the replica %s holds no backup", cfg.URL)
			}
			return orderflow.Errorf(orderflow.ENotFound, "the replica %s holds no backup as old as %s", cfg.URL, at.Format(time.RFC3339))
		}
		return orderflow.Unavailable(err, "restore from %s", cfg.URL)
	}
	dir, base := filepath.Split(path)
	for _, p := range []string{path + "-wal", path + "-shm", filepath.Join(dir, "."+base+litestream.MetaDirSuffix)} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return orderflow.Unavailable(err, "remove %s", p)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return orderflow.Unavailable(err, "move the restored database to %s", path)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return orderflow.Unavailable(err, "open %s", filepath.Dir(path))
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return orderflow.Unavailable(err, "fsync %s", filepath.Dir(path))
	}
	return nil
}
