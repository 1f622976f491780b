package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// Accept is the API's write path (orderflow.Intake): it stores o, which
// must be PENDING, records key and, in the same transaction, enqueues the
// order's message.
// A replay (same user, key and request hash) returns the original order
// with created=false and enqueues nothing. A nil error means the order and
// its message are committed to disk.
func (db *DB) Accept(ctx context.Context, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool, error) {
	if o.ID == "" || o.Status != orderflow.StatusPending {
		return orderflow.Order{}, false, orderflow.Errorf(orderflow.EInvalid, "order %q: a new order needs an id and status PENDING, got %q", o.ID, o.Status)
	}
	items, err := encodeItems(o.Items)
	if err != nil {
		return orderflow.Order{}, false, err
	}
	body := orderflow.EncodeMessage(orderflow.Message{OrderID: o.ID, RequestID: o.RequestID, TraceParent: o.TraceParent})
	var (
		stored  orderflow.Order
		created bool
	)
	err = db.write(ctx, func(w *wtx) error {
		if o.CreatedAt.IsZero() {
			o.CreatedAt = w.now
		}
		if o.UpdatedAt.IsZero() {
			o.UpdatedAt = o.CreatedAt
		}
		if key.Key != "" {
			// Claim the key first: in the common case (a new key) this one
			// statement is the whole idempotency check.
			res, err := w.claimKey.Exec(key.UserID, key.Key, key.RequestHash, string(o.ID), ms(w.now))
			if err != nil {
				return unavailable(err, "insert idempotency key")
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return w.replay(key, &stored)
			}
			w.wrote = true
		}
		if _, err := w.exec(w.insertOrder, orderArgs(o, items)...); err != nil {
			if isConstraint(err) {
				return orderflow.Errorf(orderflow.EConflict, "order %s already exists", o.ID)
			}
			return unavailable(err, "insert order %s", o.ID)
		}
		if err := w.enqueueBody(body); err != nil {
			return err
		}
		stored, created = o, true
		return nil
	})
	if err != nil {
		return orderflow.Order{}, false, err
	}
	return normalize(stored), created, nil
}

// replay handles a key this user already used: the same request gets the
// original order, another request EMismatch.
func (w *wtx) replay(key orderflow.IdempotencyKey, stored *orderflow.Order) error {
	var hash string
	var id orderflow.OrderID
	if err := w.getKey.QueryRow(key.UserID, key.Key).Scan(&hash, &id); err != nil {
		return unavailable(err, "read idempotency key")
	}
	if hash != key.RequestHash {
		return orderflow.Errorf(orderflow.EMismatch, "idempotency key %q was used with a different request", key.Key)
	}
	o, err := scanOrder(w.getOrder.QueryRow(string(id)))
	if orderflow.ErrorCode(err) == orderflow.ENotFound {
		return orderflow.Errorf(orderflow.EConflict, "the first request with idempotency key %q has not finished", key.Key)
	}
	*stored = o
	return err
}

// GetOrder returns the order with id, or ENotFound.
func (db *DB) GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	ctx, err := keyRead(ctx, "read order %s", id)
	if err != nil {
		return orderflow.Order{}, err
	}
	o, err := scanOrder(db.rs.getOrder.QueryRowContext(ctx, string(id)))
	return o, db.observe(err)
}

// keyRead is the context for a read of one row by its key on the read
// pool, the reads made for every order (the stage boundary's, GET
// /orders/{id}): ctx, if it has not ended, without its cancellation. With
// a context that can end, database/sql and the driver each start a
// goroutine per query to watch it, which doubled the CPU of such a read
// (6–7 against 12–18 µs per read of a cached row, 2026-12-04). The read
// does not need it: in WAL mode a reader does not wait for the writer's
// transaction, so it ends within microseconds of getting one of the
// pool's connections, which the other short reads give back as soon. what
// and args name the read in the error.
func keyRead(ctx context.Context, what string, args ...any) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err, what, args...)
	}
	return context.WithoutCancel(ctx), nil
}

// Undisturbed reports whether order id is in status with no cancel
// requested (false if there is no such order): the processor's question
// at a stage boundary, answered from two columns instead of the whole
// order (the processor asks it when its store offers it: the unexported
// boundaryStore of package processor, in stages.go).
func (db *DB) Undisturbed(ctx context.Context, id orderflow.OrderID, status orderflow.Status) (bool, error) {
	ctx, err := keyRead(ctx, "read order %s", id)
	if err != nil {
		return false, err
	}
	var same bool
	err = db.rs.undisturbed.QueryRowContext(ctx, string(id), string(status)).Scan(&same)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, db.observe(unavailable(err, "read order %s", id))
	}
	return same, nil
}

// ListOrders returns up to limit (see orderflow.Store) orders of
// userID, newest first (by creation time, then id), after cursor. A cursor
// that is not one of the user's orders yields an empty page.
func (db *DB) ListOrders(ctx context.Context, userID string, cursor orderflow.OrderID, limit int) ([]orderflow.Order, error) {
	if limit <= 0 {
		limit = orderflow.DefaultListLimit
	}
	limit = min(limit, orderflow.MaxListLimit)
	var (
		rows *sql.Rows
		err  error
	)
	if cursor == "" {
		rows, err = db.rs.listFirst.QueryContext(ctx, userID, limit)
	} else {
		rows, err = db.rs.listAfter.QueryContext(ctx, userID, string(cursor), limit)
	}
	if err != nil {
		return nil, db.observe(unavailable(err, "list orders"))
	}
	defer rows.Close()
	var out []orderflow.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, db.observe(err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, db.observe(unavailable(err, "list orders"))
	}
	return out, nil
}

// Transition applies t if the order is in t.From; see orderflow.Store.
func (db *DB) Transition(ctx context.Context, t orderflow.Transition) (orderflow.Order, error) {
	if err := t.Validate(); err != nil {
		return orderflow.Order{}, err
	}
	var code, detail, refund any
	if t.Failure != nil {
		code, detail = t.Failure.Code, t.Failure.Detail
	}
	if t.RefundID != "" {
		refund = t.RefundID
	}
	var out orderflow.Order
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		at := t.At
		if at.IsZero() {
			at = w.now
		}
		cur, moved, err := w.transitionOrder(t.ID, t.From, t.To, code, detail, refund, at)
		if err != nil {
			return err
		}
		out = cur
		if !moved {
			return transitionConflict(t, cur)
		}
		return nil
	})
	if err != nil && orderflow.ErrorCode(err) != orderflow.EConflict {
		return orderflow.Order{}, err
	}
	return out, err
}

// transitionConflict is the EConflict of t, which did not apply to the
// order now in cur.
func transitionConflict(t orderflow.Transition, cur orderflow.Order) error {
	switch {
	case cur.Status == t.From && t.To == orderflow.StatusCompleted && cur.Cancellation != nil:
		return orderflow.Errorf(orderflow.EConflict, "order %s has a cancellation requested and cannot complete", t.ID)
	case cur.Status == t.From && t.To == orderflow.StatusCancelled && cur.Cancellation == nil:
		return orderflow.Errorf(orderflow.EConflict, "order %s has no cancellation requested", t.ID)
	}
	return orderflow.Errorf(orderflow.EConflict, "order %s is %s, not %s", t.ID, cur.Status, t.From)
}

// RequestCancel records by's request to cancel order id; see
// orderflow.Store.
func (db *DB) RequestCancel(ctx context.Context, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error) {
	var out orderflow.Order
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		if at.IsZero() {
			at = w.now
		}
		wrote := w.wrote
		res, err := w.exec(w.requestCancel, by, ms(at), string(id))
		if err != nil {
			return unavailable(err, "request cancel of order %s", id)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			w.wrote = wrote
		} else {
			w.changed = append(w.changed, id) // a new document for the order's watchers
		}
		out, err = scanOrder(w.getOrder.QueryRow(string(id)))
		if err != nil {
			return err
		}
		if !out.Status.Cancellable() && out.Status != orderflow.StatusCancelled {
			return orderflow.Errorf(orderflow.EConflict, "order %s is %s and can no longer be cancelled", id, out.Status)
		}
		return nil
	})
	if err != nil && orderflow.ErrorCode(err) != orderflow.EConflict {
		return orderflow.Order{}, err
	}
	return out, err
}

// transitionOrder moves order id from status from to status to if it is in
// from (and the cancellation guards allow it), and returns the order as
// stored afterwards and whether it moved; ENotFound if there is no such order.
func (w *wtx) transitionOrder(id orderflow.OrderID, from, to orderflow.Status, code, detail, refund any, at time.Time) (orderflow.Order, bool, error) {
	wrote := w.wrote
	res, err := w.exec(w.transition, string(to), code, detail, ms(at), string(id), string(from), refund)
	if err != nil {
		return orderflow.Order{}, false, unavailable(err, "update order %s", id)
	}
	moved, _ := res.RowsAffected()
	if moved == 0 {
		// The UPDATE matched no row, so it wrote nothing: a conflict
		// needs no rollback of the others' work.
		w.wrote = wrote
	}
	if moved > 0 {
		// Told to the watchers at commit; an operation rolled back to
		// its savepoint leaves a spurious signal, which they allow.
		w.changed = append(w.changed, id)
	}
	o, err := scanOrder(w.getOrder.QueryRow(string(id)))
	return o, moved > 0, err
}

// UserActivity counts the orders userID created at or after since and adds
// up their amounts.
func (db *DB) UserActivity(ctx context.Context, userID string, since time.Time) (int, int64, error) {
	var n int
	var total int64
	if err := db.rs.activity.QueryRowContext(ctx, userID, ms(since)).Scan(&n, &total); err != nil {
		return 0, 0, db.observe(unavailable(err, "read activity of user %s", userID))
	}
	return n, total, nil
}

// StartOrder moves order id from PENDING to PROCESSING and returns it as
// stored; an order in another status is returned unchanged with EConflict,
// a missing one is ENotFound: the processor's start, one write instead of
// a read and a write (a WorkQueue's receive spares it that write too).
func (db *DB) StartOrder(ctx context.Context, id orderflow.OrderID, at time.Time) (orderflow.Order, error) {
	return db.Transition(ctx, orderflow.Transition{ID: id, From: orderflow.StatusPending, To: orderflow.StatusProcessing, At: at})
}

func orderArgs(o orderflow.Order, items any) []any {
	var code, detail any
	if o.Failure != nil {
		code, detail = o.Failure.Code, o.Failure.Detail
	}
	return []any{string(o.ID), o.UserID, o.Amount, o.Currency, items, string(o.Status),
		code, detail, o.RequestID, ms(o.CreatedAt), ms(o.UpdatedAt), o.TraceParent}
}

// encodeItems renders items as JSON, or NULL when there are none.
func encodeItems(items []orderflow.Item) (any, error) {
	if len(items) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil, orderflow.Errorf(orderflow.EInvalid, "order items cannot be encoded: %v", err)
	}
	return string(b), nil
}

type scanner interface{ Scan(dest ...any) error }

// scanOrder reads one row of orderCols; sql.ErrNoRows becomes ENotFound.
func scanOrder(row scanner) (orderflow.Order, error) {
	var (
		o                  orderflow.Order
		id, status         string
		items, code, detai sql.NullString
		created, updated   int64
		cancelBy, refund   sql.NullString
		cancelAt           sql.NullInt64
	)
	err := row.Scan(&id, &o.UserID, &o.Amount, &o.Currency, &items, &status, &code, &detai, &o.RequestID, &created, &updated, &o.TraceParent,
		&cancelBy, &cancelAt, &refund)
	if errors.Is(err, sql.ErrNoRows) {
		return orderflow.Order{}, orderflow.Errorf(orderflow.ENotFound, "order not found")
	}
	if err != nil {
		return orderflow.Order{}, unavailable(err, "read order")
	}
	o.ID, o.Status = orderflow.OrderID(id), orderflow.Status(status)
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	if items.Valid && items.String != "" {
		if err := json.Unmarshal([]byte(items.String), &o.Items); err != nil {
			return orderflow.Order{}, &orderflow.Error{Code: orderflow.EInternal, Detail: "stored items of order " + id + " are corrupt", Err: err}
		}
	}
	if code.Valid {
		o.Failure = &orderflow.Failure{Code: code.String, Detail: detai.String}
	}
	if cancelAt.Valid {
		o.Cancellation = &orderflow.Cancellation{RequestedBy: cancelBy.String, RequestedAt: fromMS(cancelAt.Int64), RefundID: refund.String}
	}
	return o, nil
}

// normalize makes an order read back from memory look like one read from
// the file: times in UTC with millisecond precision.
func normalize(o orderflow.Order) orderflow.Order {
	o.CreatedAt, o.UpdatedAt = fromMS(ms(o.CreatedAt)), fromMS(ms(o.UpdatedAt))
	if len(o.Items) == 0 {
		o.Items = nil
	}
	return o
}
