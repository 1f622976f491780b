package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/orderflow/orderflow"
)

// Reserve takes items from stock for order id, all or nothing, once per
// order; see orderflow.Store. Declines are recorded too, so a repeated call
// returns the first outcome.
func (db *DB) Reserve(ctx context.Context, id orderflow.OrderID, items []orderflow.Item) (*orderflow.Failure, error) {
	if id == "" {
		return nil, orderflow.Errorf(orderflow.EInvalid, "reserve needs an order id")
	}
	for _, it := range items {
		if it.Quantity <= 0 {
			return nil, orderflow.Errorf(orderflow.EInvalid, "reserve %s: quantity of %s must be positive, got %d", id, it.SKU, it.Quantity)
		}
	}
	var failure *orderflow.Failure
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		failure = nil
		var code, detail sql.NullString
		err := w.getOutcome.QueryRow(string(id)).Scan(&code, &detail)
		switch {
		case err == nil && code.Valid:
			failure = &orderflow.Failure{Code: code.String, Detail: detail.String}
			return nil
		case err == nil:
			failure, err = w.retake(id)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return unavailable(err, "read reservation of order %s", id)
		}
		for _, it := range items {
			var have int
			err := w.getStock.QueryRow(it.SKU).Scan(&have)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				failure = &orderflow.Failure{Code: orderflow.ReasonUnknownSKU, Detail: fmt.Sprintf("sku %s is not stocked", it.SKU)}
			case err != nil:
				return unavailable(err, "read stock of %s", it.SKU)
			case have < it.Quantity:
				failure = &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: fmt.Sprintf("sku %s: %d wanted, %d in stock", it.SKU, it.Quantity, have)}
			}
			if failure != nil {
				break
			}
		}
		if failure != nil {
			if _, err := w.exec(w.insertOutcome, string(id), failure.Code, failure.Detail); err != nil {
				return unavailable(err, "record reservation of order %s", id)
			}
			return nil
		}
		for _, it := range items {
			if _, err := w.exec(w.takeStock, it.Quantity, it.SKU); err != nil {
				return unavailable(err, "take stock of %s", it.SKU)
			}
			if _, err := w.exec(w.insertReservation, string(id), it.SKU, it.Quantity); err != nil {
				return unavailable(err, "record reservation of %s", it.SKU)
			}
		}
		if _, err := w.exec(w.insertOutcome, string(id), nil, nil); err != nil {
			return unavailable(err, "record reservation of order %s", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return failure, nil
}

// Release gives back what Reserve took for order id. It is idempotent and a
// no-op when nothing is held.
func (db *DB) Release(ctx context.Context, id orderflow.OrderID) error {
	return db.writeAtCommit(ctx, func(w *wtx) error { return w.release(id) })
}

// reservations reads the lines of order id's reservation that q selects
// (held or released), inside w's transaction.
func (w *wtx) reservations(q *wstmt, id orderflow.OrderID) ([]orderflow.Item, error) {
	rows, err := q.Query(string(id))
	if err != nil {
		return nil, unavailable(err, "read reservations of order %s", id)
	}
	defer rows.Close()
	var out []orderflow.Item
	for rows.Next() {
		var it orderflow.Item
		if err := rows.Scan(&it.SKU, &it.Quantity); err != nil {
			return nil, unavailable(err, "read reservation of order %s", id)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err, "read reservations of order %s", id)
	}
	return out, nil
}

// retake takes again the stock of order id's released reservation, all or
// nothing (an out-of-stock failure, not recorded, if a line cannot be
// served now): an attempt that released it and died before its final
// write left the order to go on. A held reservation is left as it is.
func (w *wtx) retake(id orderflow.OrderID) (*orderflow.Failure, error) {
	lines, err := w.reservations(w.releasedReservations, id)
	if err != nil || len(lines) == 0 {
		return nil, err
	}
	for _, it := range lines {
		var have int
		if err := w.getStock.QueryRow(it.SKU).Scan(&have); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, unavailable(err, "read stock of %s", it.SKU)
		}
		if have < it.Quantity {
			return &orderflow.Failure{Code: orderflow.ReasonOutOfStock, Detail: fmt.Sprintf("sku %s: %d wanted, %d in stock", it.SKU, it.Quantity, have)}, nil
		}
	}
	for _, it := range lines {
		if _, err := w.exec(w.takeStock, it.Quantity, it.SKU); err != nil {
			return nil, unavailable(err, "take stock of %s", it.SKU)
		}
	}
	if _, err := w.exec(w.retakeReservations, string(id)); err != nil {
		return nil, unavailable(err, "take reservation of order %s again", id)
	}
	return nil, nil
}

// release gives back the stock held for order id, inside w's transaction.
func (w *wtx) release(id orderflow.OrderID) error {
	held, err := w.reservations(w.heldReservations, id)
	if err != nil {
		return err
	}
	if len(held) == 0 {
		return nil
	}
	for _, it := range held {
		if _, err := w.exec(w.giveStock, it.SKU, it.Quantity); err != nil {
			return unavailable(err, "give back stock of %s", it.SKU)
		}
	}
	if _, err := w.exec(w.releaseReservations, string(id)); err != nil {
		return unavailable(err, "release reservations of order %s", id)
	}
	return nil
}

// SetStock sets the available quantity of sku.
func (db *DB) SetStock(ctx context.Context, sku string, quantity int) error {
	if sku == "" || quantity < 0 {
		return orderflow.Errorf(orderflow.EInvalid, "stock needs a sku and a quantity of at least 0, got %q and %d", sku, quantity)
	}
	return db.write(ctx, func(w *wtx) error {
		if _, err := w.exec(w.setStock, sku, quantity); err != nil {
			return unavailable(err, "set stock of %s", sku)
		}
		return nil
	})
}

// Stock returns the available quantity of sku, or ENotFound.
func (db *DB) Stock(ctx context.Context, sku string) (int, error) {
	var n int
	err := db.rs.stock.QueryRowContext(ctx, sku).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, orderflow.Errorf(orderflow.ENotFound, "sku %s is not stocked", sku)
	}
	if err != nil {
		return 0, db.observe(unavailable(err, "read stock of %s", sku))
	}
	return n, nil
}
