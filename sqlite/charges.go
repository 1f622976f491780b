package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/orderflow/orderflow"
)

// RecordCharge is the ledger of the simulated payment gateway: it stores c
// unless a charge with c.IdempotencyKey exists, and returns the stored
// charge, with duplicate=true when it was already there. A key with a
// refund (RecordRefund) takes no new charge: EConflict.
func (db *DB) RecordCharge(ctx context.Context, c orderflow.Charge) (orderflow.Charge, bool, error) {
	if c.IdempotencyKey == "" || c.ID == "" {
		return orderflow.Charge{}, false, orderflow.Errorf(orderflow.EInvalid, "a charge needs an id and an idempotency key")
	}
	var (
		stored    orderflow.Charge
		duplicate bool
	)
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		if c.At.IsZero() {
			c.At = w.now
		}
		if voided, err := w.refunded(c.IdempotencyKey); err != nil {
			return err
		} else if voided {
			return orderflow.Errorf(orderflow.EConflict, "idempotency key %s was refunded; it takes no charge", c.IdempotencyKey)
		}
		var at int64
		var orderID string
		err := w.getCharge.QueryRow(c.IdempotencyKey).Scan(&stored.ID, &orderID, &stored.Amount, &stored.Currency, &at)
		switch {
		case err == nil:
			stored.IdempotencyKey, stored.OrderID, stored.At = c.IdempotencyKey, orderflow.OrderID(orderID), fromMS(at)
			duplicate = true
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return unavailable(err, "read charge %s", c.IdempotencyKey)
		}
		if _, err := w.exec(w.insertCharge, c.IdempotencyKey, c.ID, string(c.OrderID), c.Amount, c.Currency, ms(c.At)); err != nil {
			return unavailable(err, "insert charge %s", c.IdempotencyKey)
		}
		stored, duplicate = c, false
		stored.At = fromMS(ms(c.At))
		return nil
	})
	if err != nil {
		return orderflow.Charge{}, false, err
	}
	return stored, duplicate, nil
}

// CountAttempt is the simulated payment gateway's count of charge
// attempts: it adds one to the attempts of idempotency key, in the file
// that holds its charges, and returns the new count (1 on the first). It
// waits for the fsync, like a write acknowledged outside: the gateway's
// answer depends on the count, which must not come back smaller after a
// power loss that keeps the receive the attempt belongs to.
func (db *DB) CountAttempt(ctx context.Context, key string) (int, error) {
	if key == "" {
		return 0, orderflow.Errorf(orderflow.EInvalid, "an attempt needs an idempotency key")
	}
	var n int
	err := db.write(ctx, func(w *wtx) error {
		w.wrote = true
		if err := w.countAttempt.QueryRow(key).Scan(&n); err != nil {
			return unavailable(err, "count attempt of charge %s", key)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// LookupCharge returns the charge recorded under idempotency key, if any.
func (db *DB) LookupCharge(ctx context.Context, key string) (orderflow.Charge, bool, error) {
	var c orderflow.Charge
	var orderID string
	var at int64
	err := db.rs.chargeByKey.QueryRowContext(ctx, key).Scan(&c.IdempotencyKey, &c.ID, &orderID, &c.Amount, &c.Currency, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return orderflow.Charge{}, false, nil
	case err != nil:
		return orderflow.Charge{}, false, db.observe(unavailable(err, "read charge %s", key))
	}
	c.OrderID, c.At = orderflow.OrderID(orderID), fromMS(at)
	return c, true, nil
}

// Charges returns the charges recorded for order id, oldest first.
func (db *DB) Charges(ctx context.Context, id orderflow.OrderID) ([]orderflow.Charge, error) {
	rows, err := db.rs.charges.QueryContext(ctx, string(id))
	if err != nil {
		return nil, db.observe(unavailable(err, "list charges of order %s", id))
	}
	defer rows.Close()
	var out []orderflow.Charge
	for rows.Next() {
		var c orderflow.Charge
		var orderID string
		var at int64
		if err := rows.Scan(&c.IdempotencyKey, &c.ID, &orderID, &c.Amount, &c.Currency, &at); err != nil {
			return nil, db.observe(unavailable(err, "read charge of order %s", id))
		}
		c.OrderID, c.At = orderflow.OrderID(orderID), fromMS(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.observe(unavailable(err, "list charges of order %s", id))
	}
	return out, nil
}

// RecordRefund is the simulated gateway's ledger of refunds: in one
// transaction it records r against the charge stored under
// r.IdempotencyKey (its id and amount; none when nothing was charged, which
// voids the key for RecordCharge), unless a refund of that key exists, and
// returns the refund as stored (the first one on a repeat).
func (db *DB) RecordRefund(ctx context.Context, r orderflow.Refund) (orderflow.Refund, error) {
	if r.IdempotencyKey == "" || r.ID == "" {
		return orderflow.Refund{}, orderflow.Errorf(orderflow.EInvalid, "a refund needs an id and an idempotency key")
	}
	var stored orderflow.Refund
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		if r.At.IsZero() {
			r.At = w.now
		}
		var at int64
		var orderID string
		err := w.getRefund.QueryRow(r.IdempotencyKey).Scan(&stored.ID, &orderID, &stored.ChargeID, &stored.Amount, &stored.Currency, &at)
		switch {
		case err == nil:
			stored.IdempotencyKey, stored.OrderID, stored.At = r.IdempotencyKey, orderflow.OrderID(orderID), fromMS(at)
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return unavailable(err, "read refund %s", r.IdempotencyKey)
		}
		r.ChargeID, r.Amount, r.Currency = "", 0, ""
		var chargeOrder string
		err = w.getCharge.QueryRow(r.IdempotencyKey).Scan(&r.ChargeID, &chargeOrder, &r.Amount, &r.Currency, &at)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return unavailable(err, "read charge %s", r.IdempotencyKey)
		}
		if _, err := w.exec(w.insertRefund, r.IdempotencyKey, r.ID, string(r.OrderID), r.ChargeID, r.Amount, r.Currency, ms(r.At)); err != nil {
			return unavailable(err, "insert refund %s", r.IdempotencyKey)
		}
		stored = r
		stored.At = fromMS(ms(r.At))
		return nil
	})
	if err != nil {
		return orderflow.Refund{}, err
	}
	return stored, nil
}

// refunded reports whether a refund is recorded under key.
func (w *wtx) refunded(key string) (bool, error) {
	var id string
	err := w.getRefund.QueryRow(key).Scan(&id, new(string), new(string), new(int64), new(string), new(int64))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, unavailable(err, "read refund %s", key)
	}
	return true, nil
}
