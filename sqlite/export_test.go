package sqlite

import "context"

// ExecOnWriter runs query on the write connection, between batches; tests
// use it to simulate a full disk with PRAGMA max_page_count.
func (db *DB) ExecOnWriter(ctx context.Context, query string) error {
	return db.write(ctx, func(w *wtx) error {
		st, _, err := db.wconn.PrepareTransient(query)
		if err != nil {
			return err
		}
		defer st.Finalize()
		_, err = st.Step()
		return err
	})
}

// SetBeforeSync makes the syncer call hook before each fsync of the WAL.
func (db *DB) SetBeforeSync(hook func()) { db.beforeSync.Store(&hook) }

// Migrations are the schema steps, for tests that build an older file.
var Migrations = migrations

// WriterPragma reads PRAGMA name on the write connection, between batches.
func (db *DB) WriterPragma(ctx context.Context, name string) (int64, error) {
	var v int64
	err := db.write(ctx, func(w *wtx) error {
		st, _, err := db.wconn.PrepareTransient("PRAGMA " + name)
		if err != nil {
			return err
		}
		defer st.Finalize()
		if _, err := st.Step(); err != nil {
			return err
		}
		v = st.ColumnInt64(0)
		return nil
	})
	return v, err
}
