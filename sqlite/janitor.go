package sqlite

import (
	"context"
	"time"
)

// purgeChunk bounds how many idempotency records one write removes, so
// that a large expiry never holds the writer (and so Accept) for long.
const purgeChunk = 1000

// runJanitor purges expired idempotency records and idle rate limits
// every JanitorInterval until Close.
func (db *DB) runJanitor() {
	ticker := time.NewTicker(db.opts.JanitorInterval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-db.closing
		cancel()
	}()
	for {
		select {
		case <-db.closing:
			return
		case <-ticker.C:
			n, err := db.PurgeExpiredKeys(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				db.logger.Warn("purge expired idempotency keys", "err", err)
			case n > 0:
				db.logger.Debug("purged expired idempotency keys", "count", n)
			}
			n, err = db.PurgeIdleRateLimits(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				db.logger.Warn("purge idle rate limits", "err", err)
			case n > 0:
				db.logger.Debug("purged idle rate limits", "count", n)
			}
		}
	}
}

// PurgeExpiredKeys deletes the idempotency records created more than
// IdempotencyTTL ago (never younger ones) and returns how many it deleted.
// The janitor calls it every JanitorInterval. A reader looks first, so
// that a round with nothing to delete writes nothing.
func (db *DB) PurgeExpiredKeys(ctx context.Context) (int, error) {
	var expired bool
	if err := db.rs.anyExpired.QueryRowContext(ctx, ms(db.now().Add(-db.opts.IdempotencyTTL))).Scan(&expired); err != nil {
		return 0, unavailable(err, "look for expired idempotency keys")
	}
	if !expired {
		return 0, nil
	}
	total := 0
	for {
		var n int64
		err := db.write(ctx, func(w *wtx) error {
			res, err := w.exec(w.purgeKeys, ms(w.now.Add(-db.opts.IdempotencyTTL)), purgeChunk)
			if err != nil {
				return unavailable(err, "purge idempotency keys")
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < purgeChunk {
			return total, nil
		}
	}
}
