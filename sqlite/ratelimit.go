package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/orderflow/orderflow"
)

// RateLimiter is the database as the store of the rate limits
// (orderflow.RateLimiter) shared by every api process on this file: a row
// per key in rate_limits with its GCRA theoretical arrival time. Safe for
// concurrent use.
//
// A take is one operation of the writer, like an Accept: it reads the
// key's tat and, if allowed, stores the new one, in the writer's open
// transaction. That transaction holds the file's write lock (BEGIN
// IMMEDIATE), so no take of another process comes between the read and the
// write, and the writer runs one operation at a time. It costs no
// transaction and no fsync of its own: it joins the group commit of the
// orders around it, and it returns as soon as it ran, not at the commit
// (writeAtRun), so the request goes on to its Accept, which usually joins
// the same transaction. BenchmarkAccept with a take before each Accept:
// 53–59 cpu-µs per order against 58–65 without, within the noise, and the
// whole cmd/bench within its noise too (docs/design-decisions.md). The state is not worth an fsync of its own: if the
// transaction is rolled back (a storage failure, or another operation of
// the batch failing after it wrote) or the power fails before its fsync,
// the takes in it are forgotten, which errs towards allowing.
type RateLimiter struct{ db *DB }

var _ orderflow.RateLimiter = (*RateLimiter)(nil)

// RateLimiter returns db as the shared store of the rate limits.
func (db *DB) RateLimiter() *RateLimiter { return &RateLimiter{db: db} }

// Take spends one unit of key's allowance under rate at now; see
// orderflow.RateLimiter. EInvalid for an invalid key
// (orderflow.ValidateRateKey); EUnavailable when the file cannot be
// written.
func (l *RateLimiter) Take(ctx context.Context, key string, rate orderflow.Rate, now time.Time) (orderflow.RateDecision, error) {
	if err := orderflow.ValidateRateKey(key); err != nil {
		return orderflow.RateDecision{}, err
	}
	var d orderflow.RateDecision
	err := l.db.writeAtRun(ctx, func(w *wtx) error {
		var tat int64
		if err := w.getTAT.QueryRow(key).Scan(&tat); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return unavailable(err, "read rate limit %s", key)
		}
		next, dec := rate.Take(tat, now)
		if dec.Allowed {
			if _, err := w.exec(w.setTAT, key, next); err != nil {
				return unavailable(err, "store rate limit %s", key)
			}
		}
		d = dec
		return nil
	})
	return d, err
}

// PurgeIdleRateLimits deletes the rate-limit rows whose tat has passed
// (the same as no row) and returns how many it deleted. The janitor calls
// it every JanitorInterval; a reader looks first, so that a round with
// nothing to delete writes nothing.
func (db *DB) PurgeIdleRateLimits(ctx context.Context) (int, error) {
	var idle bool
	if err := db.rs.anyPassedTAT.QueryRowContext(ctx, db.now().UnixNano()).Scan(&idle); err != nil {
		return 0, unavailable(err, "look for idle rate limits")
	}
	total := 0
	for idle {
		var n int64
		err := db.write(ctx, func(w *wtx) error {
			res, err := w.exec(w.purgeTATs, w.now.UnixNano(), purgeChunk)
			if err != nil {
				return unavailable(err, "purge idle rate limits")
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		idle = n == purgeChunk
	}
	return total, nil
}
