package sqlite

import "context"

// ExecOnWriter runs query on the write connection, between batches; tests
// use it to simulate a full disk with PRAGMA max_page_count.
func (db *DB) ExecOnWriter(ctx context.Context, query string) error {
	return db.write(ctx, func(w *wtx) error {
		_, err := db.wconn.ExecContext(context.Background(), query)
		return err
	})
}
