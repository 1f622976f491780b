package sqlite

import (
	"context"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow"
)

// deadWatchBatch bounds how many dead messages one read of WatchDead takes.
const deadWatchBatch = 100

// WatchDead runs until ctx ends (nil) or the DB is closed (EUnavailable):
// it calls handle for each message in the dead-letter table not handled
// yet, oldest first, and once handle returns nil marks it handled, in a
// write of its own after handle (a crash in between hands it out again:
// handle must be idempotent). It looks at once when it starts, so that the
// messages a receive dead-lettered before a crash are handled after the
// restart; then whenever a receive of this DB dead-letters messages (so
// their orders end within milliseconds), and every interval, which retries
// the messages whose handle failed and finds those another process
// dead-lettered. The dead messages stay in the table for the operator
// (ListDead, Redrive, Purge); Purge drops a message not handled yet with
// the rest. Errors of handle and of the database are logged and retried
// at the next look.
func (db *DB) WatchDead(ctx context.Context, interval time.Duration, handle func(context.Context, orderflow.Delivery) error) error {
	if interval <= 0 {
		return orderflow.Errorf(orderflow.EInvalid, "dead-letter watch interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// Taken before the look, so that a message dead-lettered while the
		// look runs wakes the next one.
		woken := db.dead.wait()
		db.handleDead(ctx, handle)
		select {
		case <-ctx.Done():
			return nil
		case <-db.closing:
			return errClosed()
		case <-woken:
		case <-t.C:
		}
	}
}

// handleDead is one look of WatchDead: it hands every unhandled dead
// message to handle, a batch at a time, and marks the batch's handled ones.
func (db *DB) handleDead(ctx context.Context, handle func(context.Context, orderflow.Delivery) error) {
	after := int64(0)
	for ctx.Err() == nil {
		batch, err := db.unhandledDead(ctx, after)
		if err != nil {
			db.logs.Log(ctx, slog.LevelWarn, "dead-watch-read", "dead-letter watch: cannot read the dead-letter table; will retry", "err", err)
			return
		}
		var handled []int64
		for _, q := range batch {
			after = q.id
			d := delivery(q.id, q.body, q.count)
			if err := handle(ctx, d); err != nil {
				if ctx.Err() == nil {
					db.logger.WarnContext(orderflow.WithOrderID(ctx, d.OrderID), "dead-letter watch: cannot end the order of a dead message; will retry",
						"message_id", d.MessageID, "err", err)
				}
				continue
			}
			handled = append(handled, q.id)
		}
		// Marked even if ctx ended meanwhile: handle did its work.
		if err := db.markDead(context.WithoutCancel(ctx), handled); err != nil {
			// They are handed out again at the next look, which handle
			// tolerates.
			db.logs.Log(ctx, slog.LevelWarn, "dead-watch-mark", "dead-letter watch: cannot mark dead messages handled", "err", err)
		}
		if len(batch) < deadWatchBatch {
			return
		}
	}
}

// unhandledDead reads up to deadWatchBatch unhandled dead messages with an
// id above after.
func (db *DB) unhandledDead(ctx context.Context, after int64) ([]queued, error) {
	rows, err := db.rs.unhandledDead.QueryContext(ctx, after, deadWatchBatch)
	if err != nil {
		return nil, db.observe(unavailable(err, "read dead messages"))
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.id, &q.body, &q.count); err != nil {
			return nil, db.observe(unavailable(err, "read dead message"))
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, db.observe(unavailable(err, "read dead messages"))
	}
	return out, nil
}

// markDead records that the dead messages ids are handled. Losing this
// write to a power cut only hands them out again, so it returns at commit.
func (db *DB) markDead(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return db.writeAtCommit(ctx, func(w *wtx) error {
		changed := false
		for _, id := range ids {
			res, err := w.exec(w.markDead, id)
			if err != nil {
				return unavailable(err, "mark dead message %d handled", id)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = true
			}
		}
		w.wrote = changed // redriven or purged meanwhile: nothing changed
		return nil
	})
}
