package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

const crashChildEnv = "ORDERFLOW_SQLITE_CRASH_CHILD_DB"

// TestMain turns the test binary into the child process of
// TestAcceptedOrdersSurviveKill9 when crashChildEnv is set, and of
// TestOpenRefusesAFileItCannotWrite when openChildEnv is.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
	}
	if path := os.Getenv(openChildEnv); path != "" {
		openChild(path)
	}
	os.Exit(m.Run())
}

// crashChild accepts orders from many goroutines and prints each id once
// Accept returned nil, until it is killed.
func crashChild(path string) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				user := fmt.Sprint("crash-", g)
				o := order(user, time.Now())
				key := orderflow.IdempotencyKey{UserID: user, Key: fmt.Sprint(i), RequestHash: "h"}
				if _, _, err := db.Accept(context.Background(), o, key); err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintln(out, o.ID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}

func TestAcceptedOrdersSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []orderflow.OrderID
	sc := bufio.NewScanner(stdout)
	for len(acked) < 500 && sc.Scan() {
		id := orderflow.OrderID(sc.Text())
		if !id.Valid() {
			t.Fatalf("child said %q", sc.Text())
		}
		acked = append(acked, id)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	// Everything printed before the kill was acknowledged too.
	for sc.Scan() {
		if id := orderflow.OrderID(sc.Text()); id.Valid() {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	if len(acked) < 500 {
		t.Fatalf("child acknowledged only %d orders", len(acked))
	}

	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	for _, id := range acked {
		if _, err := db.GetOrder(ctx(t), id); err != nil {
			t.Errorf("acknowledged order %s lost: %v", id, err)
		}
	}
	d := depth(t, db)
	if d.Visible < len(acked) {
		t.Errorf("queue holds %d messages after kill -9, want at least the %d acknowledged", d.Visible, len(acked))
	}
	checkIntegrity(t, path)
}

// checkIntegrity runs SQLite's integrity check on the file.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var res string
	if err := raw.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity check: %q, %v", res, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "future.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if db, err := sqlite.Open(ctx(t), path, sqlite.Options{}); err == nil {
		db.Close()
		t.Fatalf("Open of a schema newer than the program succeeded")
	}
}

func TestFailingOperationRollsBackAloneInABatch(t *testing.T) {
	t.Parallel()
	db, path := open(t, sqlite.Options{})
	existing := order("olga", t0)
	accept(t, db, existing, orderflow.IdempotencyKey{})

	// Each duplicate claims a fresh key and then fails on the order id, so
	// its key must be rolled back while the good accepts around it commit.
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	good := make([]orderflow.OrderID, n)
	for i := range n {
		wg.Go(func() {
			key := orderflow.IdempotencyKey{UserID: "olga", Key: fmt.Sprint("k", i), RequestHash: "h"}
			o := order("olga", t0.Add(time.Duration(i+1)*time.Millisecond))
			if i%2 == 0 {
				o.ID = existing.ID
			} else {
				good[i] = o.ID
			}
			_, _, errs[i] = db.Accept(context.Background(), o, key)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 {
			if orderflow.ErrorCode(err) != orderflow.EConflict {
				t.Errorf("duplicate order id %d: got %v, want %s", i, err, orderflow.EConflict)
			}
			continue
		}
		if err != nil {
			t.Errorf("accept %d: %v", i, err)
		}
		if _, err := db.GetOrder(ctx(t), good[i]); err != nil {
			t.Errorf("order %d lost: %v", i, err)
		}
	}
	// The failed accepts left no key behind: reusing one creates an order.
	if _, created := accept(t, db, order("olga", t0.Add(time.Minute)), orderflow.IdempotencyKey{UserID: "olga", Key: "k0", RequestHash: "h"}); !created {
		t.Errorf("key of a failed accept was kept")
	}
	if got, want := depth(t, db).Visible, 1+n/2+1; got != want {
		t.Errorf("queue holds %d messages, want %d", got, want)
	}
	checkIntegrity(t, path)
}
