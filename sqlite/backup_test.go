package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// TestBackupIsAConsistentSnapshotWhileWritesGoOn: a backup taken while
// orders keep being accepted holds every order acknowledged before it
// started and opens as a database of its own.
func TestBackupIsAConsistentSnapshotWhileWritesGoOn(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{})
	var (
		mu    sync.Mutex
		acked []orderflow.OrderID
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for n := 0; !stop.Load(); n++ {
				o := order("bea", t0.Add(time.Duration(w*1_000_000+n)*time.Millisecond))
				if _, _, err := db.Accept(context.Background(), o, orderflow.IdempotencyKey{}); err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, o.ID)
				mu.Unlock()
			}
		})
	}
	waitFor(t, "500 orders accepted", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 500 })
	mu.Lock()
	before := append([]orderflow.OrderID(nil), acked...)
	mu.Unlock()
	dst := filepath.Join(t.TempDir(), "backup.db")
	if err := sqlite.Backup(ctx(t), path, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	stop.Store(true)
	wg.Wait()

	copyDB, err := sqlite.Open(ctx(t), dst, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer copyDB.Close()
	for _, id := range before {
		if _, err := copyDB.GetOrder(ctx(t), id); err != nil {
			t.Fatalf("order %s, acknowledged before the backup began, is not in it: %v", id, err)
		}
	}
	t.Logf("%d orders in the backup checked; %d more were acknowledged while it ran", len(before), during)
}

func TestBackupRefusesToOverwriteAndNeedsADatabase(t *testing.T) {
	t.Parallel()
	_, path := open(t, sqlite.Options{})
	dir := t.TempDir()
	existing := filepath.Join(dir, "there.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Backup(ctx(t), path, existing); orderflow.ErrorCode(err) != orderflow.EConflict {
		t.Errorf("backup onto an existing file: got %v, want EConflict", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}
	err := sqlite.Backup(ctx(t), filepath.Join(dir, "missing.db"), filepath.Join(dir, "out.db"))
	if orderflow.ErrorCode(err) != orderflow.ENotFound {
		t.Errorf("backup of no database: got %v, want ENotFound", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the failed backups left files behind: %v", entries)
	}
}
