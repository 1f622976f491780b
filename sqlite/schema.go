package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] takes the schema from user_version i to i+1. Append only.
var migrations = []string{
	`
CREATE TABLE orders (
	id             TEXT PRIMARY KEY,
	user_id        TEXT NOT NULL,
	amount         INTEGER NOT NULL,
	currency       TEXT NOT NULL,
	items          TEXT,
	status         TEXT NOT NULL,
	failure_code   TEXT,
	failure_detail TEXT,
	request_id     TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
-- One index serves both per-user queries: ListOrders (newest first, by
-- created_at then id) and UserActivity (count and sum since a time, covered
-- thanks to amount). Each index costs a random page write per new order.
CREATE INDEX orders_user ON orders (user_id, created_at, id, amount);

CREATE TABLE idempotency (
	user_id      TEXT NOT NULL,
	key          TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	order_id     TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE queue (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	body          BLOB NOT NULL,
	receive_count INTEGER NOT NULL DEFAULT 0,
	visible_at    INTEGER NOT NULL,
	receipt       TEXT NOT NULL DEFAULT '',
	sent_at       INTEGER NOT NULL
);
CREATE INDEX queue_visible ON queue (visible_at);

CREATE TABLE dead (
	id            INTEGER PRIMARY KEY,
	body          BLOB NOT NULL,
	receive_count INTEGER NOT NULL,
	visible_at    INTEGER NOT NULL,
	receipt       TEXT NOT NULL DEFAULT '',
	sent_at       INTEGER NOT NULL
);

CREATE TABLE stock (
	sku      TEXT PRIMARY KEY,
	quantity INTEGER NOT NULL CHECK (quantity >= 0)
) WITHOUT ROWID;

CREATE TABLE reservations (
	order_id TEXT NOT NULL,
	sku      TEXT NOT NULL,
	quantity INTEGER NOT NULL,
	released INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (order_id, sku)
) WITHOUT ROWID;

-- The first outcome of Reserve per order (failure_code NULL: reserved),
-- so that a repeated Reserve returns it instead of trying again.
CREATE TABLE reserve_outcomes (
	order_id       TEXT PRIMARY KEY,
	failure_code   TEXT,
	failure_detail TEXT
) WITHOUT ROWID;

CREATE TABLE charges (
	idempotency_key TEXT PRIMARY KEY,
	id              TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	amount          INTEGER NOT NULL,
	currency        TEXT NOT NULL,
	at              INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX charges_order ON charges (order_id);
`,
	// writer and batch: which open DB (a random id per Open) enqueued the
	// message, in which of its transactions (see DB.commits), so that a
	// receive in that same process knows whether that transaction is
	// fsynced yet.
	`ALTER TABLE queue ADD COLUMN writer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN batch INTEGER NOT NULL DEFAULT 0;`,
	// The simulated gateway's attempt counts per idempotency key, kept
	// beside its charges so that a restart continues the same sequence.
	`CREATE TABLE charge_attempts (
	idempotency_key TEXT PRIMARY KEY,
	attempts        INTEGER NOT NULL
) WITHOUT ROWID;`,
	// handled: the processor's dead-letter watch ended the message's
	// order (DB.WatchDead). The messages already dead when this runs had
	// their orders ended as they were dead-lettered.
	`ALTER TABLE dead ADD COLUMN handled INTEGER NOT NULL DEFAULT 0;
UPDATE dead SET handled = 1;
CREATE INDEX dead_unhandled ON dead (id) WHERE handled = 0;`,
	// The rate limits shared by the api processes on this file
	// (RateLimiter): each key's GCRA theoretical arrival time, Unix ns.
	// A row whose tat has passed is the same as no row; the janitor
	// deletes such rows.
	`CREATE TABLE rate_limits (
	key TEXT PRIMARY KEY,
	tat INTEGER NOT NULL
) WITHOUT ROWID;`,
	// traceparent: the W3C trace context of the request that accepted
	// the order, for work on it that does not start from its message
	// (the pending sweep, the dead-letter watch).
	`ALTER TABLE orders ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';`,
	// Cancellation (orderflow.Cancellation): the owner's request, and the
	// refund of a charge taken before the processor saw it. refunds is
	// the simulated gateway's ledger of refunds per idempotency key; a
	// row with charge_id '' voids a key nothing was charged under.
	`ALTER TABLE orders ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE orders ADD COLUMN cancel_requested_at INTEGER;
ALTER TABLE orders ADD COLUMN refund_id TEXT;
CREATE TABLE refunds (
	idempotency_key TEXT PRIMARY KEY,
	id              TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	charge_id       TEXT NOT NULL,
	amount          INTEGER NOT NULL,
	currency        TEXT NOT NULL,
	at              INTEGER NOT NULL
) WITHOUT ROWID;`,
}

// migrate brings the schema to the latest version, recording it in PRAGMA
// user_version. Processes that open a new file at the same moment (a
// service manager starting the api and the processor together) race here:
// the steps run in one BEGIN IMMEDIATE transaction, which takes the write
// lock before it reads anything, and the version is read again inside it,
// so the first process migrates and the others wait for it (busy_timeout)
// and then find nothing left to do. A file already at the latest version
// is only read.
func migrate(ctx context.Context, conn *sql.Conn) error {
	version, err := schemaVersion(ctx, conn)
	if err != nil || version == len(migrations) {
		return err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return unavailable(err, "begin schema migration")
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if version, err = schemaVersion(ctx, conn); err != nil {
		return err
	}
	for v := version; v < len(migrations); v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return unavailable(err, "migrate schema to version %d", v+1)
		}
	}
	if version < len(migrations) {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return unavailable(err, "record schema version %d", len(migrations))
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return unavailable(err, "commit schema migration to version %d", len(migrations))
	}
	committed = true
	return nil
}

// schemaVersion reads user_version and refuses a file of a newer program.
func schemaVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, unavailable(err, "read schema version")
	}
	if version > len(migrations) {
		return 0, fmt.Errorf("sqlite schema version %d is newer than this program's %d", version, len(migrations))
	}
	return version, nil
}
