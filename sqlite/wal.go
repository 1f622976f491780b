package sqlite

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// walFile is the database's write-ahead log, opened by us only to fsync
// it. On Linux (and every POSIX system we target) fsync flushes a file's
// data whichever descriptor wrote it, so syncing our descriptor makes the
// frames SQLite's connection wrote durable.
type walFile struct {
	path string
	f    *os.File
}

// openWAL opens the WAL of the database at path (which must exist, i.e.
// the database was written in WAL mode) and makes its directory entry
// durable.
func openWAL(path string) (*walFile, error) {
	w := &walFile{path: path + "-wal"}
	if err := w.open(); err != nil {
		return nil, err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		w.close()
		return nil, err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *walFile) open() error {
	f, err := os.Open(w.path)
	if err != nil {
		return err
	}
	w.f = f
	return nil
}

// sync fsyncs the WAL. SQLite keeps the same file while any connection is
// open (it truncates, never replaces it), but should the file ever be
// replaced, sync reopens it; if it is gone, the data is in the database
// file and there is nothing to sync.
func (w *walFile) sync() error {
	have, err1 := w.f.Stat()
	now, err2 := os.Stat(w.path)
	switch {
	case errors.Is(err2, fs.ErrNotExist):
		return nil
	case err1 != nil || err2 != nil || !os.SameFile(have, now):
		w.f.Close()
		if err := w.open(); err != nil {
			return err
		}
	}
	return w.f.Sync()
}

func (w *walFile) close() error {
	if w == nil || w.f == nil {
		return nil
	}
	return w.f.Close()
}
