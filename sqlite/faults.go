package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/orderflow/orderflow"
	msqlite "modernc.org/sqlite"
	zs "zombiezen.com/go/sqlite"
)

// What the SQLite file's failures mean: which errors are the file's
// (Ping and the logs care), which say it is damaged, and Open's check.

// errSyncFailed is the error of every write after an fsync of the WAL
// failed.
func errSyncFailed() error {
	return orderflow.Errorf(orderflow.EUnavailable, "sqlite WAL could not be synced; restart to recover")
}

// resultCode returns the primary SQLite result code in err's chain, from
// either driver (the writer's zombiezen connection, the readers'
// database/sql one): ResultOK for nil, ResultError for an error that is
// not SQLite's.
func resultCode(err error) zs.ResultCode {
	var me *msqlite.Error
	if errors.As(err, &me) {
		return zs.ResultCode(me.Code()).ToPrimary()
	}
	if err == nil {
		return zs.ResultOK
	}
	// ErrCode says ResultError for errors that are not SQLite's.
	return zs.ErrCode(err).ToPrimary()
}

// isStorageFault reports whether err is a failure of the file or of its
// locks rather than of a statement (a bug) or the caller (a cancelled
// context).
func isStorageFault(err error) bool {
	switch resultCode(err) {
	case zs.ResultIOErr, zs.ResultFull, zs.ResultReadOnly, zs.ResultCorrupt, zs.ResultNotADB,
		zs.ResultCantOpen, zs.ResultBusy, zs.ResultLocked, zs.ResultNoMem, zs.ResultPerm, zs.ResultProtocol:
		return true
	}
	return false
}

// isCorrupt reports whether err says the file is damaged.
func isCorrupt(err error) bool {
	switch resultCode(err) {
	case zs.ResultCorrupt, zs.ResultNotADB:
		return true
	}
	return false
}

// corrupted is the error of an operation that met a damaged file.
func corrupted(err error, what string) error {
	return &orderflow.Error{
		Code:   orderflow.EStoreUnavailable,
		Detail: fmt.Sprintf("the order store's database file is corrupted (%s); an operator must restore it from a backup", what),
		Err:    err,
	}
}

// damagedAtOpen returns err as corrupted if it says that the file is not
// a database SQLite can read: a damaged page, or a damaged header, which
// SQLite reports as SQLITE_NOTADB or as a plain SQLITE_ERROR "unsupported
// file format" (the format numbers at bytes 18-21, the schema format at
// 44). Other errors are returned as they are.
func damagedAtOpen(err error, path string) error {
	if orderflow.ErrorCode(err) == orderflow.EStoreUnavailable {
		return err
	}
	if isCorrupt(err) || strings.Contains(err.Error(), "unsupported file format") {
		return corrupted(err, "opening "+path)
	}
	return err
}

// checkFile is Open's check of the file, on the write connection whose
// statements are prepared:
//
//   - the schema's pages pass PRAGMA quick_check (what every start reads;
//     its cost does not grow with the data: 0.26 ms on a 1 GB file, where
//     a quick_check of the whole file takes 7.4 s from the page cache and
//     34 s from disk; BenchmarkOpenLargeFile, docs/operations.md). A
//     damaged page elsewhere is found when a read or a write meets it (see
//     DB.observe).
//   - the connection can write: SQLite opens a file it may not write
//     (mode 444, another owner, a read-only mount) read-only without a word,
//     and every write would fail. The probe's row is written and rolled
//     back, which writes nothing to the file.
func checkFile(conn *zs.Conn, ws *writeStmts, path string) error {
	st, _, err := conn.PrepareTransient("PRAGMA quick_check(sqlite_schema)")
	if err != nil {
		return unavailable(err, "check sqlite %s", path)
	}
	defer st.Finalize()
	var problems []string
	for {
		row, err := st.Step()
		if err != nil {
			return unavailable(err, "check sqlite %s", path)
		}
		if !row {
			break
		}
		if r := st.ColumnText(0); r != "ok" {
			problems = append(problems, r)
		}
	}
	if len(problems) > 0 {
		return corrupted(errors.New(strings.Join(problems, "; ")), "quick_check of the schema of "+path)
	}
	if _, err := ws.begin.Exec(); err != nil {
		return unwritable(err, path)
	}
	_, err = ws.probeInsert.Exec()
	if !conn.AutocommitEnabled() {
		if _, rerr := ws.rollback.Exec(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return unwritable(err, path)
	}
	return nil
}

func unwritable(err error, path string) error {
	if resultCode(err) == zs.ResultReadOnly {
		return orderflow.Unavailable(err, "sqlite %s cannot be written by this process (the mode or owner of the file, its -wal or -shm, or a read-only mount); orderflow must write it", path)
	}
	return unavailable(err, "check that sqlite %s can be written", path)
}

// freeSpace returns the bytes available to unprivileged users on the file
// system holding path.
func freeSpace(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
