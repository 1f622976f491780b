package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/orderflow/orderflow"
)

// The write connection's wrapper binds and scans like database/sql for the
// types the write operations use, and reports what it cannot convert.
func TestWriteConnectionBindsAndScansLikeDatabaseSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	if err := prepareFile(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	conn, err := openWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	prep := func(q string) *wstmt {
		t.Helper()
		s, err := conn.Prepare(q)
		if err != nil {
			t.Fatalf("prepare %q: %v", q, err)
		}
		t.Cleanup(func() { s.Finalize() })
		return &wstmt{s: s, conn: conn}
	}
	prep(`CREATE TABLE t (s TEXT, n INTEGER, b BLOB, f INTEGER)`).Exec()
	ins := prep(`INSERT INTO t (s, n, b, f) VALUES (?, ?, ?, ?)`)
	for _, args := range [][]any{
		{"a", 1, []byte("x"), true},
		{"b", int64(2), nil, false},
	} {
		if res, err := ins.Exec(args...); err != nil {
			t.Fatalf("insert %v: %v", args, err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("insert %v affected %d rows", args, n)
		}
	}
	if _, err := ins.Exec("c", 1.5, nil, nil); err == nil {
		t.Error("binding a float64 succeeded; want an error naming the type")
	}
	if _, err := ins.Exec("c", 1); err == nil {
		t.Error("two arguments for four parameters: no error")
	}

	sel := prep(`SELECT s, n, b, f FROM t WHERE s = ?`)
	var (
		id orderflow.OrderID
		n  int
		b  []byte
		f  bool
	)
	if err := sel.QueryRow("a").Scan(&id, &n, &b, &f); err != nil {
		t.Fatal(err)
	}
	if id != "a" || n != 1 || string(b) != "x" || !f {
		t.Errorf("row a = %q %d %q %v", id, n, b, f)
	}
	if err := sel.QueryRow("b").Scan(&id, &n, &b, &f); err != nil || b != nil || f {
		t.Errorf("row b: NULL blob = %q, flag %v, err %v; want nil, false, nil", b, f, err)
	}
	var ns sql.NullString
	var s string
	if err := sel.QueryRow("b").Scan(&ns, &n, &s, &f); !errors.Is(err, errNull) {
		t.Errorf("NULL into a string: err %v, want errNull", err)
	}
	if err := sel.QueryRow("b").Scan(&ns, &n); err == nil {
		t.Error("two destinations for four columns: no error")
	}
	var c complex64
	if err := sel.QueryRow("a").Scan(&c, &n, &b, &f); err == nil {
		t.Error("scan into a complex64: no error")
	}
	if err := sel.QueryRow("zzz").Scan(&s, &n, &b, &f); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("no row: err %v, want sql.ErrNoRows", err)
	}
	if err := sel.QueryRow(struct{}{}).Scan(&s, &n, &b, &f); err == nil {
		t.Error("QueryRow with an unbindable argument: no error")
	}
	if _, err := sel.Query(struct{}{}); err == nil {
		t.Error("Query with an unbindable argument: no error")
	}

	all := prep(`SELECT s FROM t ORDER BY s`)
	rows, err := all.Query()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if rows.Next() || rows.Err() != nil || rows.Close() != nil || rows.Close() != nil {
		t.Errorf("after the last row: Next again, Err %v", rows.Err())
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("rows = %q, want [a b]", got)
	}

	// A failing statement reports SQLite's error, and a constraint is
	// recognised as one.
	uniq := prep(`CREATE UNIQUE INDEX t_s ON t (s)`)
	if _, err := uniq.Exec(); err != nil {
		t.Fatal(err)
	}
	if _, err := ins.Exec("a", 3, nil, false); !isConstraint(err) {
		t.Errorf("duplicate insert: err %v, want a constraint violation", err)
	}
	bad := prep(`INSERT INTO t (s, n) SELECT s, n FROM t WHERE n = ? RETURNING s`)
	if err := bad.QueryRow(1).Scan(&s); !isConstraint(err) {
		t.Errorf("duplicate insert through QueryRow: err %v, want a constraint violation", err)
	}
}
