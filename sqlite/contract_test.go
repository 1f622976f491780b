package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
	"github.com/orderflow/orderflow/storetest"
)

// open opens a DB on a fresh file in t's temp dir and closes it at cleanup.
func open(t *testing.T, opts sqlite.Options) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orderflow.db")
	db, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db, path
}

func TestQueueContract(t *testing.T) {
	t.Parallel()
	storetest.TestQueue(t, func(t *testing.T, o storetest.QueueOptions) (orderflow.Queue, orderflow.DeadLetters) {
		db, _ := open(t, sqlite.Options{VisibilityTimeout: o.VisibilityTimeout, MaxReceives: o.MaxReceives})
		return db, db
	})
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.TestStore(t, func(t *testing.T) storetest.Store {
		db, _ := open(t, sqlite.Options{})
		create := func(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
			stored, _, err := db.Accept(ctx, o, orderflow.IdempotencyKey{})
			return stored, err
		}
		return storetest.Store{Store: db, Create: create, Stock: db}
	})
}

func TestLedgerContract(t *testing.T) {
	t.Parallel()
	db, _ := open(t, sqlite.Options{})
	storetest.TestLedger(t, func(t *testing.T) storetest.Ledger { return db })
}

func TestIntakeContract(t *testing.T) {
	t.Parallel()
	storetest.TestIntake(t, func(t *testing.T) storetest.Intake {
		db, _ := open(t, sqlite.Options{})
		return storetest.Intake{Intake: db, Orders: db, Queue: db}
	})
}

func TestRateLimiterContract(t *testing.T) {
	t.Parallel()
	// Two DBs on one file: two api processes of the split mode.
	a, path := open(t, sqlite.Options{})
	b, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	storetest.TestRateLimiter(t, func(t *testing.T) (orderflow.RateLimiter, orderflow.RateLimiter) {
		return a.RateLimiter(), b.RateLimiter()
	})
}

func TestWatcherContract(t *testing.T) {
	t.Parallel()
	t.Run("this process's writes", func(t *testing.T) {
		storetest.TestWatcher(t, func(t *testing.T) storetest.Watching {
			db, _ := open(t, sqlite.Options{})
			return storetest.Watching{Store: acceptingStore(db), Watcher: db}
		})
	})
	t.Run("another process's writes", func(t *testing.T) {
		// Two DBs on one file: the split mode's processor writes, its
		// api watches.
		storetest.TestWatcher(t, func(t *testing.T) storetest.Watching {
			writer, path := open(t, sqlite.Options{})
			api, err := sqlite.Open(context.Background(), path, sqlite.Options{WatchOtherWriters: true, WatchInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { api.Close() })
			return storetest.Watching{Store: acceptingStore(writer), Watcher: api}
		})
	})
}

// acceptingStore is db for the store suites: orders come in by Accept.
func acceptingStore(db *sqlite.DB) storetest.Store {
	create := func(ctx context.Context, o orderflow.Order) (orderflow.Order, error) {
		stored, _, err := db.Accept(ctx, o, orderflow.IdempotencyKey{})
		return stored, err
	}
	return storetest.Store{Store: db, Create: create, Stock: db}
}
