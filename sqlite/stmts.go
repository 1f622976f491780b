package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	zs "zombiezen.com/go/sqlite"
)

const orderCols = `id, user_id, amount, currency, items, status, failure_code, failure_detail, request_id, created_at, updated_at, traceparent`

// orderReadCols are what scanOrder reads: orderCols and the cancellation.
const orderReadCols = orderCols + `, cancel_requested_by, cancel_requested_at, refund_id`

// writeStmts are prepared on the write connection and used only by the
// writer goroutine.
type writeStmts struct {
	all []*wstmt

	begin, commit, rollback                  *wstmt
	savepoint, rollbackTo, release           *wstmt
	insertOrder, getOrder, transition        *wstmt
	getKey, claimKey, purgeKeys              *wstmt
	enqueue, selectVisible, markReceived     *wstmt
	deleteMsg, changeVisibility              *wstmt
	deadLetter, deleteQueued, markDead       *wstmt
	selectDead, redrive, deleteDead          *wstmt
	purgeDead                                *wstmt
	getOutcome, insertOutcome                *wstmt
	getStock, takeStock, setStock            *wstmt
	insertReservation, heldReservations      *wstmt
	giveStock, releaseReservations           *wstmt
	releasedReservations, retakeReservations *wstmt
	getCharge, insertCharge                  *wstmt
	countAttempt, requestCancel              *wstmt
	getRefund, insertRefund                  *wstmt
	getTAT, setTAT, purgeTATs                *wstmt
	probeInsert, probeDelete, restartWAL     *wstmt
}

func (s *writeStmts) prepare(conn *zs.Conn) error {
	p := func(dst **wstmt, query string) error {
		st, err := conn.Prepare(query)
		if err != nil {
			return unavailable(err, "prepare %q", query)
		}
		*dst = &wstmt{s: st, conn: conn}
		s.all = append(s.all, *dst)
		return nil
	}
	return errors.Join(s.prepareOrders(p), s.prepareBooks(p))
}

// prepareOrders prepares the transaction control and the statements of
// orders, idempotency keys and the queue with p.
func (s *writeStmts) prepareOrders(p func(**wstmt, string) error) error {
	return errors.Join(
		p(&s.begin, `BEGIN IMMEDIATE`),
		p(&s.commit, `COMMIT`),
		p(&s.rollback, `ROLLBACK`),
		p(&s.savepoint, `SAVEPOINT op`),
		p(&s.rollbackTo, `ROLLBACK TO op`),
		p(&s.release, `RELEASE op`),

		p(&s.insertOrder, `INSERT INTO orders (`+orderCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p(&s.getOrder, `SELECT `+orderReadCols+` FROM orders WHERE id = ?`),
		// No RETURNING: SQLite runs a RETURNING clause as a trigger that
		// fills a temporary table, and a statement with a trigger writes a
		// statement journal of every page it changes. An UPDATE followed by
		// getOrder costs a third less (BenchmarkProcessCycle: 21 → 15 µs
		// per transition).
		// The cancellation guards: COMPLETED only while no cancel is
		// requested, CANCELLED only while one is (orderflow.Transition).
		p(&s.transition, `UPDATE orders SET status = ?1, failure_code = ?2, failure_detail = ?3, updated_at = ?4,
			refund_id = coalesce(?7, refund_id)
			WHERE id = ?5 AND status = ?6 AND CASE ?1
				WHEN 'COMPLETED' THEN cancel_requested_at IS NULL
				WHEN 'CANCELLED' THEN cancel_requested_at IS NOT NULL
				ELSE 1 END`),
		// A PENDING order is cancelled at once; a PROCESSING one keeps the
		// first request for the processor (orderflow.Store.RequestCancel).
		p(&s.requestCancel, `UPDATE orders SET
			status = CASE status WHEN 'PENDING' THEN 'CANCELLED' ELSE status END,
			cancel_requested_by = ?1, cancel_requested_at = ?2, updated_at = ?2
			WHERE id = ?3 AND (status = 'PENDING' OR (status = 'PROCESSING' AND cancel_requested_at IS NULL))`),
		p(&s.getKey, `SELECT request_hash, order_id FROM idempotency WHERE user_id = ? AND key = ?`),
		p(&s.claimKey, `INSERT INTO idempotency (user_id, key, request_hash, order_id, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_id, key) DO NOTHING`),
		p(&s.purgeKeys, `DELETE FROM idempotency WHERE (user_id, key) IN
			(SELECT user_id, key FROM idempotency WHERE created_at < ? LIMIT ?)`),

		p(&s.enqueue, `INSERT INTO queue (body, receive_count, visible_at, receipt, sent_at, writer, batch) VALUES (?, 0, ?, '', ?, ?, ?)`),
		// A constant LIMIT: with a bound LIMIT, receives asking for varying
		// counts made SQLite re-prepare the statement (3% of
		// BenchmarkProcessCycle's CPU with batch sizes 1-10, 1.4% of the
		// server's in cmd/bench). Receive steps only as many rows as it
		// wants.
		p(&s.selectVisible, `SELECT id, body, receive_count, writer, batch FROM queue WHERE visible_at <= ? ORDER BY visible_at, id LIMIT `+strconv.Itoa(maxReceiveBatch)),
		p(&s.markReceived, `UPDATE queue SET receive_count = receive_count + 1, visible_at = ?, receipt = ? WHERE id = ?`),
		p(&s.deleteMsg, `DELETE FROM queue WHERE id = ? AND receipt = ?`),
		p(&s.changeVisibility, `UPDATE queue SET visible_at = ? WHERE id = ? AND receipt = ?`),
		p(&s.deadLetter, `INSERT INTO dead (id, body, receive_count, visible_at, receipt, sent_at)
			SELECT id, body, receive_count, ?, '', sent_at FROM queue WHERE id = ?`),
		p(&s.deleteQueued, `DELETE FROM queue WHERE id = ?`),
		p(&s.markDead, `UPDATE dead SET handled = 1 WHERE id = ? AND handled = 0`),
		p(&s.selectDead, `SELECT id FROM dead ORDER BY id LIMIT ?`),
		p(&s.redrive, `INSERT INTO queue (id, body, receive_count, visible_at, receipt, sent_at, writer, batch)
			SELECT id, body, 0, ?, '', sent_at, ?, ? FROM dead WHERE id = ?`),
		p(&s.deleteDead, `DELETE FROM dead WHERE id = ?`),
		p(&s.purgeDead, `DELETE FROM dead`),
	)
}

// prepareBooks prepares the statements of stock, charges and refunds,
// rate limits and the write probe with p.
func (s *writeStmts) prepareBooks(p func(**wstmt, string) error) error {
	return errors.Join(
		p(&s.getOutcome, `SELECT failure_code, failure_detail FROM reserve_outcomes WHERE order_id = ?`),
		p(&s.insertOutcome, `INSERT INTO reserve_outcomes (order_id, failure_code, failure_detail) VALUES (?, ?, ?)`),
		p(&s.getStock, `SELECT quantity FROM stock WHERE sku = ?`),
		p(&s.takeStock, `UPDATE stock SET quantity = quantity - ? WHERE sku = ?`),
		p(&s.setStock, `INSERT INTO stock (sku, quantity) VALUES (?, ?) ON CONFLICT (sku) DO UPDATE SET quantity = excluded.quantity`),
		p(&s.insertReservation, `INSERT INTO reservations (order_id, sku, quantity, released) VALUES (?, ?, ?, 0)`),
		p(&s.heldReservations, `SELECT sku, quantity FROM reservations WHERE order_id = ? AND released = 0`),
		p(&s.giveStock, `INSERT INTO stock (sku, quantity) VALUES (?, ?) ON CONFLICT (sku) DO UPDATE SET quantity = quantity + excluded.quantity`),
		p(&s.releaseReservations, `UPDATE reservations SET released = 1 WHERE order_id = ? AND released = 0`),
		p(&s.releasedReservations, `SELECT sku, quantity FROM reservations WHERE order_id = ? AND released = 1`),
		p(&s.retakeReservations, `UPDATE reservations SET released = 0 WHERE order_id = ? AND released = 1`),

		p(&s.getCharge, `SELECT id, order_id, amount, currency, at FROM charges WHERE idempotency_key = ?`),
		p(&s.insertCharge, `INSERT INTO charges (idempotency_key, id, order_id, amount, currency, at) VALUES (?, ?, ?, ?, ?, ?)`),
		p(&s.getRefund, `SELECT id, order_id, charge_id, amount, currency, at FROM refunds WHERE idempotency_key = ?`),
		p(&s.insertRefund, `INSERT INTO refunds (idempotency_key, id, order_id, charge_id, amount, currency, at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		p(&s.countAttempt, `INSERT INTO charge_attempts (idempotency_key, attempts) VALUES (?, 1)
			ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1 RETURNING attempts`),

		p(&s.getTAT, `SELECT tat FROM rate_limits WHERE key = ?`),
		p(&s.setTAT, `INSERT INTO rate_limits (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat`),
		p(&s.purgeTATs, `DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE tat < ? LIMIT ?)`),

		// The write probe (see wtx.probe).
		p(&s.probeInsert, `INSERT INTO orders (`+orderCols+`) VALUES ('', '', 0, '', NULL, 'PENDING', NULL, NULL, '', 0, 0, '')`),
		p(&s.probeDelete, `DELETE FROM orders WHERE id = ''`),
		p(&s.restartWAL, `PRAGMA wal_checkpoint(RESTART)`), // see DB.restartWAL
	)
}

func (s *writeStmts) close() {
	for _, st := range s.all {
		_ = st.s.Finalize()
	}
	s.all = nil
}

// readStmts are prepared on the read-only pool.
type readStmts struct {
	all []*sql.Stmt

	ping, getOrder, listFirst, listAfter *sql.Stmt
	undisturbed                          *sql.Stmt
	activity, stock, anyVisible, depth   *sql.Stmt
	listDead, charges, chargeByKey       *sql.Stmt
	anyExpired, unhandledDead            *sql.Stmt
	anyPassedTAT                         *sql.Stmt
}

func (s *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	p := func(dst **sql.Stmt, query string) error {
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			return unavailable(err, "prepare %q", query)
		}
		*dst = st
		s.all = append(s.all, st)
		return nil
	}
	return errors.Join(
		p(&s.ping, `SELECT 1`),
		p(&s.getOrder, `SELECT `+orderReadCols+` FROM orders WHERE id = ?`),
		p(&s.undisturbed, `SELECT status = ?2 AND cancel_requested_at IS NULL FROM orders WHERE id = ?1`),
		p(&s.listFirst, `SELECT `+orderReadCols+` FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`),
		p(&s.listAfter, `SELECT `+orderReadCols+` FROM orders WHERE user_id = ?1
			AND (created_at, id) < ((SELECT created_at FROM orders WHERE id = ?2 AND user_id = ?1), ?2)
			ORDER BY created_at DESC, id DESC LIMIT ?3`),
		p(&s.activity, `SELECT count(*), coalesce(sum(amount), 0) FROM orders WHERE user_id = ? AND created_at >= ?`),
		p(&s.stock, `SELECT quantity FROM stock WHERE sku = ?`),
		p(&s.anyVisible, `SELECT EXISTS (SELECT 1 FROM queue WHERE visible_at <= ?)`),
		p(&s.anyExpired, `SELECT EXISTS (SELECT 1 FROM idempotency WHERE created_at < ?)`),
		p(&s.anyPassedTAT, `SELECT EXISTS (SELECT 1 FROM rate_limits WHERE tat < ?)`),
		p(&s.depth, `SELECT (SELECT count(*) FROM queue WHERE visible_at <= ?), (SELECT count(*) FROM queue), (SELECT count(*) FROM dead)`),
		p(&s.listDead, `SELECT id, body, receive_count FROM dead ORDER BY id LIMIT ?`),
		p(&s.unhandledDead, `SELECT id, body, receive_count FROM dead WHERE handled = 0 AND id > ? ORDER BY id LIMIT ?`),
		p(&s.charges, `SELECT idempotency_key, id, order_id, amount, currency, at FROM charges WHERE order_id = ? ORDER BY at, id`),
		p(&s.chargeByKey, `SELECT idempotency_key, id, order_id, amount, currency, at FROM charges WHERE idempotency_key = ?`),
	)
}

func (s *readStmts) close() {
	for _, st := range s.all {
		_ = st.Close()
	}
	s.all = nil
}
