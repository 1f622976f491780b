package replica_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/replica"
	"github.com/orderflow/orderflow/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func order(user string, at time.Time) orderflow.Order {
	return orderflow.Order{
		ID: orderflow.NewOrderID(at), UserID: user, Amount: 1999, Currency: "USD",
		Items:  []orderflow.Item{{SKU: "widget", Quantity: 1}},
		Status: orderflow.StatusPending, RequestID: "req-" + user, CreatedAt: at, UpdatedAt: at,
	}
}

// startReplicator runs a Replicator of the file at path until the test
// ends, and returns it and a function that stops it (waiting for its last
// sync).
func startReplicator(t *testing.T, path string, cfg replica.Config) (*replica.Replicator, func()) {
	t.Helper()
	r, err := replica.New(path, cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// waitCaughtUp waits until r's replica holds every write to its file.
func waitCaughtUp(t *testing.T, r *replica.Replicator) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); r.Lag(time.Now()) > 0 || !r.Active(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replica is still %s behind after 30s", r.Lag(time.Now()))
		}
	}
}

// walSalt is the salt of the WAL's header at path: it changes every time
// the WAL restarts from its beginning.
func walSalt(path string) []byte {
	f, err := os.Open(path + "-wal")
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, 16); err != nil {
		return nil
	}
	return b
}

// TestBusyWriterLosesNoFrames: with a busy writer, orderflow's checkpointer
// copying the WAL into the file every 20 ms and the WAL restarting many
// times, the replica holds every acknowledged order: the database restored
// from it has them all.
func TestBusyWriterLosesNoFrames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orderflow.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, stop := startReplicator(t, path, replica.Config{URL: "file://" + filepath.Join(dir, "replica"), SyncInterval: 100 * time.Millisecond})

	var (
		mu       sync.Mutex
		acked    []orderflow.OrderID
		quit     atomic.Bool
		wg       sync.WaitGroup
		restarts int
	)
	for w := range 8 {
		wg.Go(func() {
			for n := 0; !quit.Load(); n++ {
				o := order("busy", t0.Add(time.Duration(w*10_000_000+n)*time.Millisecond))
				o.RequestID = string(bytes.Repeat([]byte{'r'}, 600)) // more pages per order
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
	// Write until the WAL restarted at least 5 times (or 20 s passed).
	salt := walSalt(path)
	for deadline := time.Now().Add(20 * time.Second); restarts < 5 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s := walSalt(path); s != nil && !bytes.Equal(s, salt) {
			restarts++
			salt = s
		}
	}
	quit.Store(true)
	wg.Wait()
	if restarts < 5 {
		t.Fatalf("the WAL restarted %d times in 20 s, want at least 5 for this test to mean anything", restarts)
	}
	waitCaughtUp(t, r)
	stop()

	restored := filepath.Join(t.TempDir(), "restored.db")
	if err := replica.Restore(context.Background(), restored, replica.Config{URL: "file://" + filepath.Join(dir, "replica")}, time.Time{}, false); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	rdb, err := sqlite.Open(context.Background(), restored, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	missing := 0
	for _, id := range acked {
		if _, err := rdb.GetOrder(context.Background(), id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged orders are missing from the restored replica", missing, len(acked))
	}
	t.Logf("%d orders written through %d WAL restarts, all in the replica", len(acked), restarts)
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"file:///var/backups/orderflow", true},
		{"file://localhost/var/backups/orderflow", true},
		{"s3://shop-backups/orderflow", true},
		{"s3://shop-backups", true},
		{"file://relative/dir", false},      // a host, not an absolute path
		{"file:backups", false},             // relative
		{"s3:///orderflow", false},          // no bucket
		{"s3://key:secret@bucket/x", false}, // credentials belong to the AWS settings
		{"s3://bucket/x?endpoint=y", false}, // so does the endpoint
		{"gs://bucket/x", false},
		{"/var/backups", false},
		{"%zz", false},
	} {
		err := replica.CheckURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
		if err != nil && orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("CheckURL(%q): code %q, want EInvalid", tt.url, orderflow.ErrorCode(err))
		}
	}
}
