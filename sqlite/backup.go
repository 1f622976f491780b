package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/orderflow/orderflow"
)

// Backup writes a consistent snapshot of the database at path to the new
// file dst while the api and the processor (this process or others) keep
// writing the file. It runs VACUUM INTO on a connection of its own: that
// reads the database inside one read transaction, a snapshot of the WAL
// like any reader's, and never takes the write lock, so writers do not
// wait for it (the checkpointer only cannot restart the WAL until it is
// done). The copy is written to a temporary file beside dst, checked with
// quick_check, fsynced and then renamed to dst, so that dst is either a
// whole backup or absent; it holds no WAL and is compacted (free pages
// dropped).
//
// Backup returns an EConflict error if dst exists, ENotFound if there is
// no database at path, EInvalid for a dst that is not a plain file name,
// and EUnavailable for I/O failures.
func Backup(ctx context.Context, path, dst string) error {
	if dst == "" || strings.ContainsAny(dst, "?#") {
		return orderflow.Errorf(orderflow.EInvalid, "backup file %q must name a file and contain no ? or #", dst)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return orderflow.Errorf(orderflow.ENotFound, "no database at %s", path)
	}
	if _, err := os.Lstat(dst); err == nil {
		return orderflow.Errorf(orderflow.EConflict, "%s exists; a backup never overwrites a file", dst)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return unavailable(err, "create backup file beside %s", dst)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // after the rename, a no-op
	// VACUUM INTO wants a file that does not exist or is empty: the empty
	// temporary file reserves the name.
	if err := vacuumInto(ctx, path, tmpPath); err != nil {
		return err
	}
	if err := quickCheck(ctx, tmpPath); err != nil {
		return err
	}
	if err := syncFile(tmpPath); err != nil {
		return unavailable(err, "fsync backup %s", tmpPath)
	}
	// Link, not rename: it fails if dst appeared meanwhile.
	if err := os.Link(tmpPath, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return orderflow.Errorf(orderflow.EConflict, "%s exists; a backup never overwrites a file", dst)
		}
		return unavailable(err, "move backup to %s", dst)
	}
	return syncDir(filepath.Dir(dst))
}

func vacuumInto(ctx context.Context, path, dst string) error {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return unavailable(err, "open sqlite %s", path)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return unavailable(err, "back up %s", path)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check on the database file at path.
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", path+"?mode=ro")
	if err != nil {
		return unavailable(err, "open sqlite %s", path)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return unavailable(err, "check %s", path)
	}
	if res != "ok" {
		return corrupted(errors.New(res), "quick_check of "+path)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return unavailable(err, "open %s", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return unavailable(err, "fsync %s", dir)
	}
	return nil
}
