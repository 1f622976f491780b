package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"

	zs "zombiezen.com/go/sqlite"
)

// The write connection talks to SQLite directly (zombiezen.com/go/sqlite,
// on the same pure-Go SQLite as the database/sql driver the readers use)
// instead of through database/sql. Every write runs on the one writer
// goroutine, so this connection is the pipeline's serial path, and
// database/sql's per-statement work (locks, contexts, column-name lookups,
// reflection in Scan) was about a third of the time of a statement there.
// The small wrapper below keeps the call shapes of database/sql (Exec,
// QueryRow(...).Scan, Query with Next/Scan) so that the write operations
// read the same.

// wstmt is a statement prepared on the write connection. Only the writer
// goroutine may use it.
type wstmt struct {
	s    *zs.Stmt
	conn *zs.Conn
}

// execResult answers RowsAffected like sql.Result.
type execResult int64

func (r execResult) RowsAffected() (int64, error) { return int64(r), nil }

// Exec runs the statement to completion with args bound in order.
func (st *wstmt) Exec(args ...any) (execResult, error) {
	defer st.s.Reset()
	if err := st.bind(args); err != nil {
		return 0, err
	}
	for {
		row, err := st.s.Step()
		if err != nil {
			return 0, err
		}
		if !row {
			return execResult(st.conn.Changes()), nil
		}
	}
}

// QueryRow runs the statement and keeps its first row for Scan, which
// resets the statement. Like database/sql, a statement with RETURNING has
// made all its changes by the time the first row is returned.
func (st *wstmt) QueryRow(args ...any) *wrow {
	if err := st.bind(args); err != nil {
		st.s.Reset()
		return &wrow{err: err}
	}
	row, err := st.s.Step()
	switch {
	case err != nil:
		st.s.Reset()
		return &wrow{err: err}
	case !row:
		st.s.Reset()
		return &wrow{err: sql.ErrNoRows}
	}
	return &wrow{st: st}
}

// Query runs the statement; the caller reads it with Next and Scan and
// must Close it.
func (st *wstmt) Query(args ...any) (*wrows, error) {
	if err := st.bind(args); err != nil {
		st.s.Reset()
		return nil, err
	}
	return &wrows{st: st}, nil
}

// bind binds args to the statement's parameters in order. Like
// database/sql it refuses a different number of arguments, so that no
// parameter keeps a value from an earlier call.
func (st *wstmt) bind(args []any) error {
	if n := st.s.BindParamCount(); len(args) != n {
		return fmt.Errorf("sqlite: %d arguments for %d parameters", len(args), n)
	}
	for i, a := range args {
		p := i + 1
		switch v := a.(type) {
		case nil:
			st.s.BindNull(p)
		case string:
			st.s.BindText(p, v)
		case []byte:
			st.s.BindBytes(p, v)
		case int:
			st.s.BindInt64(p, int64(v))
		case int64:
			st.s.BindInt64(p, v)
		case bool:
			st.s.BindBool(p, v)
		default:
			return fmt.Errorf("sqlite: cannot bind argument %d of type %T", p, a)
		}
	}
	return nil
}

// wrow is the result of QueryRow.
type wrow struct {
	st  *wstmt
	err error
}

// Scan copies the row's columns into dest and resets the statement.
func (r *wrow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.st.s.Reset()
	return scanColumns(r.st.s, dest)
}

// wrows is the result of Query.
type wrows struct {
	st   *wstmt
	err  error
	done bool
}

// Next steps to the next row, reporting false at the end or on an error
// (see Err).
func (r *wrows) Next() bool {
	if r.done {
		return false
	}
	row, err := r.st.s.Step()
	if err != nil || !row {
		r.err, r.done = err, true
		return false
	}
	return true
}

func (r *wrows) Scan(dest ...any) error { return scanColumns(r.st.s, dest) }
func (r *wrows) Err() error             { return r.err }

// Close resets the statement; it is safe to call more than once.
func (r *wrows) Close() error {
	r.done = true
	return r.st.s.Reset()
}

// errNull is returned when a NULL column is scanned into a destination
// that cannot hold NULL, as database/sql does.
var errNull = errors.New("sqlite: NULL scanned into a non-nullable destination")

// scanColumns copies the current row of s into dest, one column each,
// converting like database/sql for the types the writer uses.
func scanColumns(s *zs.Stmt, dest []any) error {
	if n := s.ColumnCount(); len(dest) != n {
		return fmt.Errorf("sqlite: %d destinations for %d columns", len(dest), n)
	}
	for i, d := range dest {
		null := s.ColumnType(i) == zs.TypeNull
		switch v := d.(type) {
		case *sql.NullString:
			v.Valid = !null
			v.String = s.ColumnText(i)
		case *sql.NullInt64:
			v.Valid = !null
			v.Int64 = s.ColumnInt64(i)
		case *[]byte:
			if null {
				*v = nil
				continue
			}
			*v = make([]byte, s.ColumnLen(i))
			s.ColumnBytes(i, *v)
		default:
			if null {
				return fmt.Errorf("column %d: %w", i, errNull)
			}
			switch v := d.(type) {
			case *string:
				*v = s.ColumnText(i)
			case *int64:
				*v = s.ColumnInt64(i)
			case *int:
				*v = int(s.ColumnInt64(i))
			case *bool:
				*v = s.ColumnInt64(i) != 0
			default:
				// Named string types such as orderflow.OrderID.
				rv := reflect.ValueOf(d)
				if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.String {
					return fmt.Errorf("sqlite: cannot scan column %d into %T", i, d)
				}
				rv.Elem().SetString(s.ColumnText(i))
			}
		}
	}
	return nil
}
