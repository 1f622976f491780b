package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/sqlite"
)

// newFile creates a database file with n orders, closed (its WAL
// checkpointed into the file), and returns its path and the orders' ids.
func newFile(t *testing.T, dir string, n int) (string, []orderflow.OrderID) {
	t.Helper()
	path := filepath.Join(dir, "orderflow.db")
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]orderflow.OrderID, n)
	for i := range ids {
		o := order(fmt.Sprint("user-", i%10), t0.Add(time.Duration(i)*time.Millisecond))
		if _, _, err := db.Accept(ctx(t), o, orderflow.IdempotencyKey{}); err != nil {
			t.Fatal(err)
		}
		ids[i] = o.ID
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// overwrite writes b at offset off of the file at path.
func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A damaged schema page, which the schema's parser does not notice (the
// start of the cell content area moved), fails Open with a clear error.
func TestOpenRefusesAFileWhoseSchemaFailsQuickCheck(t *testing.T) {
	t.Parallel()
	path, _ := newFile(t, t.TempDir(), 1)
	overwrite(t, path, 105, []byte{0x00, 0x10}) // page 1's b-tree header
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a file with a damaged schema page succeeded")
	}
	if orderflow.ErrorCode(err) != orderflow.EStoreUnavailable || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("Open: got %v (code %s), want %s saying the file is corrupted", err, orderflow.ErrorCode(err), orderflow.EStoreUnavailable)
	}
}

// A damaged file header (bytes 40-80: schema cookie, format numbers, page
// counts) is refused at Open as a corrupted file, not as a bare "SQL logic
// error: unsupported file format".
func TestOpenRefusesAFileWhoseHeaderIsDamaged(t *testing.T) {
	t.Parallel()
	path, _ := newFile(t, t.TempDir(), 1)
	overwrite(t, path, 40, []byte(strings.Repeat("\xff", 40)))
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
	if err == nil {
		db.Close()
		t.Fatal("Open of a file with a damaged header succeeded")
	}
	if orderflow.ErrorCode(err) != orderflow.EStoreUnavailable || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("Open: got %v (code %s), want %s saying the file is corrupted", err, orderflow.ErrorCode(err), orderflow.EStoreUnavailable)
	}
}

// A damaged page of a table that start-up does not read is found when a
// read meets it: the error is EStoreUnavailable (not a 503 to retry), it
// is logged once at ERROR however many reads meet it, and from then on
// Ping (readiness) fails.
func TestCorruptedTableIsStoreUnavailableLoggedOnceAndFailsPing(t *testing.T) {
	t.Parallel()
	path, ids := newFile(t, t.TempDir(), 2000)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var page, pageSize int64
	// A leaf of the orders table away from its first one, which the write
	// probe touches.
	err = raw.QueryRow(`SELECT pageno, (SELECT page_size FROM pragma_page_size) FROM dbstat
		WHERE name = 'orders' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 5`).Scan(&page, &pageSize)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	overwrite(t, path, (page-1)*pageSize, []byte(strings.Repeat("\xff", 64)))

	logs := &logtest.Buffer{}
	db, err := sqlite.Open(ctx(t), path, sqlite.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("Open (the damaged page is not read at start): %v", err)
	}
	defer db.Close()
	if err := db.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping before anything met the damaged page: %v", err)
	}
	damaged := 0
	for range 2 {
		for _, id := range ids {
			_, err := db.GetOrder(ctx(t), id)
			switch orderflow.ErrorCode(err) {
			case "":
			case orderflow.EStoreUnavailable:
				damaged++
				if !strings.Contains(orderflow.ErrorDetail(err), "corrupted") {
					t.Errorf("detail %q does not say the file is corrupted", orderflow.ErrorDetail(err))
				}
			default:
				t.Fatalf("GetOrder(%s): got %v, want nil or %s", id, err, orderflow.EStoreUnavailable)
			}
		}
	}
	if damaged == 0 {
		t.Fatal("no read met the damaged page")
	}
	if err := db.Ping(ctx(t)); orderflow.ErrorCode(err) != orderflow.EStoreUnavailable {
		t.Errorf("Ping after a read met the damaged page: got %v, want %s", err, orderflow.EStoreUnavailable)
	}
	var errorLines int
	for _, l := range logs.Records(t) {
		if l["level"] == "ERROR" {
			errorLines++
			if msg, _ := l["msg"].(string); !strings.Contains(msg, "corrupted") {
				t.Errorf("ERROR line does not say the file is corrupted: %v", l)
			}
		}
	}
	if errorLines != 1 {
		t.Errorf("%d ERROR lines for %d reads of a damaged page, want 1:\n%s", errorLines, damaged, logs.String())
	}
}

const openChildEnv = "ORDERFLOW_SQLITE_OPEN_CHILD_DB"

// openChild opens the file at path and prints the error code and error.
func openChild(path string) {
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		db.Close()
		fmt.Println("opened")
	} else {
		fmt.Printf("%s: %v\n", orderflow.ErrorCode(err), err)
	}
	os.Exit(0)
}

// SQLite opens a file that the process may not write read-only without a
// word, and every write would fail while reads (and a read-only readiness
// check) work: Open refuses such a file and says why. As root the check
// runs in a child process as nobody, since root may write any file.
func TestOpenRefusesAFileItCannotWrite(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "orderflow-readonly-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path, _ := newFile(t, dir, 1)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	var out string
	if os.Geteuid() != 0 {
		db, err := sqlite.Open(ctx(t), path, sqlite.Options{})
		if err == nil {
			db.Close()
			out = "opened"
		} else {
			out = fmt.Sprintf("%s: %v", orderflow.ErrorCode(err), err)
		}
	} else {
		out = runAsNobody(t, dir, path)
	}
	if !strings.HasPrefix(out, orderflow.EUnavailable+": ") || !strings.Contains(out, "cannot be written") {
		t.Errorf("Open of a file mode 444 by another user: got %q, want %s saying it cannot be written", out, orderflow.EUnavailable)
	}
}

// runAsNobody runs this test binary (copied to dir, which nobody can
// read) as openChild of path, as user nobody, and returns what it printed.
func runAsNobody(t *testing.T, dir, path string) string {
	t.Helper()
	bin := filepath.Join(dir, "sqlite.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), openChildEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
