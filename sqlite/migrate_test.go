package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// TestConcurrentOpensOfANewFileAllSucceed: processes started together on
// a file that does not exist yet (a service manager starting the api and
// the processor units) race to create and migrate it; every one must come
// up, waiting for the migration another one runs instead of failing.
func TestConcurrentOpensOfANewFileAllSucceed(t *testing.T) {
	t.Parallel()
	const rounds, opens = 5, 8
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "new.db")
		dbs := make([]*sqlite.DB, opens)
		errs := make([]error, opens)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range opens {
			wg.Go(func() {
				<-start
				dbs[i], errs[i] = sqlite.Open(context.Background(), path, sqlite.Options{JanitorInterval: time.Hour})
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: open %d of %d: %v", round, i+1, opens, err)
			}
		}
		// Every one works on the same, fully migrated schema.
		for i, db := range dbs {
			if db == nil {
				continue
			}
			o := order("uma", t0.Add(time.Duration(i)*time.Second))
			if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); err != nil {
				t.Errorf("round %d: Accept through open %d: %v", round, i+1, err)
			}
		}
		for _, db := range dbs {
			if db != nil {
				if err := db.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
}
