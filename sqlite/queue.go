package sqlite

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	zs "zombiezen.com/go/sqlite"
)

const (
	// pollInterval bounds how long a waiting Receive takes to notice a
	// message whose visibility timeout ran out (arrivals wake it at once).
	pollInterval = 50 * time.Millisecond
	// maxReceiveBatch bounds one Receive.
	maxReceiveBatch = 100
	// maxVisibility is SQS's limit on a visibility timeout.
	maxVisibility = 12 * time.Hour
	// maxRawBody bounds SendRaw, like SQS's message size limit.
	maxRawBody = 256 << 10
)

// Send enqueues msgs in one transaction, visible at once.
func (db *DB) Send(ctx context.Context, msgs ...orderflow.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		bodies[i] = orderflow.EncodeMessage(m)
	}
	return db.write(ctx, func(w *wtx) error {
		for _, b := range bodies {
			if err := w.enqueueBody(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// SendRaw enqueues body as it is, so that tests can send poison messages.
func (db *DB) SendRaw(ctx context.Context, body []byte) error {
	if len(body) > maxRawBody {
		return orderflow.Errorf(orderflow.EInvalid, "message of %d bytes exceeds %d", len(body), maxRawBody)
	}
	body = append([]byte(nil), body...)
	return db.write(ctx, func(w *wtx) error { return w.enqueueBody(body) })
}

func (w *wtx) enqueueBody(body []byte) error {
	now := ms(w.now)
	if _, err := w.exec(w.enqueue, body, now, now, w.db.writer, int64(w.seq)); err != nil {
		return unavailable(err, "enqueue message")
	}
	w.notify = true
	return nil
}

// Receive returns up to max messages (at most 100), waiting up to wait for
// the first one to arrive. See orderflow.Queue.
func (db *DB) Receive(ctx context.Context, max int, wait time.Duration) ([]orderflow.Delivery, error) {
	return db.receive(ctx, max, wait, nil)
}

func (db *DB) receive(ctx context.Context, max int, wait time.Duration, st *startedOrders) ([]orderflow.Delivery, error) {
	max = min(maxReceiveBatch, max)
	if max <= 0 {
		max = 1
	}
	deadline := time.Now().Add(wait)
	for {
		arrival, gen := db.arrivals.waitGen()
		// A receive that would hand out nothing must not cost a write
		// transaction, or an idle server with its receivers long-polling
		// would write several times a second: unless messages were
		// enqueued here since a look last found the queue drained, a
		// reader looks first. With a backlog the reader's look, 4% of the
		// server's CPU in cmd/bench, is skipped; an arrival that another
		// receiver took costs one write that hands out nothing (and
		// changes nothing). Messages that become visible without an
		// arrival (a visibility timeout running out, another process's
		// send) are found by the reader's look.
		if gen != db.seenEmpty.Load() || db.anyVisible(ctx) {
			ds, err := db.receiveOnce(ctx, max, st)
			if err == nil && len(ds) < max {
				db.sawEmpty(gen) // it took every visible message
			}
			if err != nil || len(ds) > 0 {
				return ds, err
			}
		}
		db.sawEmpty(gen)
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, nil
		}
		if hook := db.beforeWait.Load(); hook != nil {
			(*hook)()
		}
		timer := time.NewTimer(min(remaining, db.poll))
		select {
		case <-arrival:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, unavailable(ctx.Err(), "receive")
		case <-db.closing:
			timer.Stop()
			return nil, errClosed()
		}
		timer.Stop()
	}
}

// sawEmpty records that a look begun at the arrivals' generation gen found
// no visible message. A look begun earlier does not move it back.
func (db *DB) sawEmpty(gen uint64) {
	for {
		seen := db.seenEmpty.Load()
		if seen >= gen || db.seenEmpty.CompareAndSwap(seen, gen) {
			return
		}
	}
}

// anyVisible asks a reader whether a receive could find anything, so that
// polling an empty queue costs the writer nothing. On error it answers yes
// and lets the writer find out.
func (db *DB) anyVisible(ctx context.Context) bool {
	var yes bool
	if err := db.rs.anyVisible.QueryRowContext(ctx, ms(db.now())).Scan(&yes); err != nil {
		return true
	}
	return yes
}

type queued struct {
	id    int64
	body  []byte
	count int
	// Which open DB enqueued it, in which transaction (selectVisible only).
	writer, batch int64
}

// receiveOnce hands out up to max visible messages in one write. With st
// (a WorkQueue's receive) it also starts the order of each well-formed
// message it hands out, as far as st has room, and records in st the
// orders it started.
func (db *DB) receiveOnce(ctx context.Context, max int, st *startedOrders) ([]orderflow.Delivery, error) {
	var out, dead []orderflow.Delivery
	var starts startBatch
	room := st.reserve(max)
	// A receive waits for the fsync (write, not writeAtCommit) when a
	// message it hands out was enqueued by a transaction not yet fsynced
	// (an Accept committed just before): the processor is about to act on
	// it, perhaps outside (a real payment gateway), and the fsync that
	// covers the receive covers that Accept too, so nothing is done for an
	// order a power loss could still take back. When every message it
	// hands out is older than the last fsync, as in a backlog, it returns
	// at commit like the processor's other writes. Only this process's own
	// transactions are known to be fsynced or not: a message another
	// process (or an earlier run) enqueued makes the receive wait.
	err := db.write(ctx, func(w *wtx) error {
		out, dead, starts = out[:0], dead[:0], starts.reset()
		synced := db.synced.Load()
		settled := true // every message handed out was enqueued by a transaction fsynced here
		hidden := ms(w.now.Add(db.opts.VisibilityTimeout))
		for len(out) < max {
			found, err := w.visible(max - len(out))
			if err != nil {
				return err
			}
			deadNow := 0
			for _, q := range found {
				if q.count >= db.opts.MaxReceives {
					if err := w.deadLetterMsg(q); err != nil {
						return err
					}
					dead = append(dead, delivery(q.id, q.body, q.count))
					deadNow++
					continue
				}
				d, err := w.handOut(q, hidden)
				if err != nil {
					return err
				}
				settled = settled && q.writer == db.writer && uint64(q.batch) <= synced
				if err := w.startHandedOut(d, &starts, room); err != nil {
					return err
				}
				out = append(out, d)
			}
			if deadNow == 0 || len(found) == 0 {
				break
			}
		}
		w.releaseAtCommit = settled
		db.backlog.Store(len(out) == max)
		return nil
	})
	if err != nil {
		// The write may still be running (its caller's context ended):
		// starts is the writer's until it is done, and the batch is not
		// recorded anyway.
		st.commit(room, startBatch{}, false)
		return nil, err
	}
	st.commit(room, starts, true)
	db.deadLettered(ctx, dead)
	return out, nil
}

// deadLettered wakes WatchDead for the messages a committed receive moved
// to the dead-letter table, and logs them.
func (db *DB) deadLettered(ctx context.Context, dead []orderflow.Delivery) {
	if len(dead) == 0 {
		return
	}
	db.dead.broadcast()
	for _, d := range dead {
		db.logger.WarnContext(orderflow.WithOrderID(ctx, d.OrderID), "message moved to the dead-letter queue",
			"message_id", d.MessageID, "receive_count", d.ReceiveCount, "poison", d.Err != nil)
	}
}

// visible reads up to n visible messages, oldest first.
func (w *wtx) visible(n int) ([]queued, error) {
	rows, err := w.selectVisible.Query(ms(w.now))
	if err != nil {
		return nil, unavailable(err, "select visible messages")
	}
	defer rows.Close()
	var found []queued
	for len(found) < n && rows.Next() {
		var q queued
		if err := rows.Scan(&q.id, &q.body, &q.count, &q.writer, &q.batch); err != nil {
			return nil, unavailable(err, "read message")
		}
		found = append(found, q)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err, "read messages")
	}
	return found, nil
}

// handOut marks q received, hidden until hidden, under a new receipt.
func (w *wtx) handOut(q queued, hidden int64) (orderflow.Delivery, error) {
	receipt := strconv.FormatInt(q.id, 10) + "." + strconv.FormatUint(rand.Uint64(), 36)
	if _, err := w.exec(w.markReceived, hidden, receipt, q.id); err != nil {
		return orderflow.Delivery{}, unavailable(err, "mark message received")
	}
	d := delivery(q.id, q.body, q.count+1)
	d.Receipt = receipt
	return d, nil
}

// startHandedOut moves the order of d from PENDING to PROCESSING and adds
// it to starts if it moved, while starts holds fewer than room orders.
// Every other order d names is added to starts as seen.
func (w *wtx) startHandedOut(d orderflow.Delivery, starts *startBatch, room int) error {
	if d.Err != nil {
		return nil
	}
	if len(starts.started) >= room {
		starts.seen = append(starts.seen, d.OrderID)
		return nil
	}
	o, moved, err := w.transitionOrder(d.OrderID, orderflow.StatusPending, orderflow.StatusProcessing, nil, nil, nil, w.now)
	switch {
	case err == nil && moved:
		starts.started = append(starts.started, o)
		return nil
	case orderflow.ErrorCode(err) == orderflow.EUnavailable:
		return err
	}
	// Not PENDING, no such order, a row that cannot be read: the
	// processor's StartOrder meets it, instead of one bad row failing
	// every receive.
	starts.seen = append(starts.seen, d.OrderID)
	return nil
}

// deadLetterMsg moves q to the dead-letter table, unhandled: the order it
// names is left as it is, for the processor's dead-letter watch (WatchDead).
func (w *wtx) deadLetterMsg(q queued) error {
	if _, err := w.exec(w.deadLetter, ms(w.now), q.id); err != nil {
		return unavailable(err, "dead-letter message %d", q.id)
	}
	if _, err := w.exec(w.deleteQueued, q.id); err != nil {
		return unavailable(err, "dead-letter message %d", q.id)
	}
	return nil
}

func delivery(id int64, body []byte, count int) orderflow.Delivery {
	d := orderflow.Delivery{MessageID: strconv.FormatInt(id, 10), ReceiveCount: count, Body: body}
	d.Message, d.Err = orderflow.DecodeMessage(body)
	return d
}

// parseReceipt splits a receipt into its message id and the whole receipt.
func parseReceipt(receipt string) (int64, error) {
	idPart, _, ok := strings.Cut(receipt, ".")
	id, err := strconv.ParseInt(idPart, 10, 64)
	if !ok || err != nil {
		return 0, orderflow.Errorf(orderflow.EInvalid, "receipt %q is not one of this queue's", receipt)
	}
	return id, nil
}

func staleReceipt(receipt string) error {
	return orderflow.Errorf(orderflow.ENotFound, "receipt %q is stale: the message was deleted or received again", receipt)
}

// Delete acknowledges receipts. Receipts that are malformed or stale are
// reported in a *orderflow.BatchError; the others are deleted.
func (db *DB) Delete(ctx context.Context, receipts ...string) error {
	if len(receipts) == 0 {
		return nil
	}
	failed := map[string]error{}
	err := db.writeAtCommit(ctx, func(w *wtx) error {
		clear(failed)
		for _, r := range receipts {
			id, err := parseReceipt(r)
			if err != nil {
				failed[r] = err
				continue
			}
			res, err := w.exec(w.deleteMsg, id, r)
			if err != nil {
				return unavailable(err, "delete message %d", id)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				failed[r] = staleReceipt(r)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return &orderflow.BatchError{Failed: failed}
	}
	return nil
}

// ChangeVisibility hides the message of receipt for timeout from now (0
// makes it visible at once). A stale receipt is ENotFound.
func (db *DB) ChangeVisibility(ctx context.Context, receipt string, timeout time.Duration) error {
	if timeout < 0 || timeout > maxVisibility {
		return orderflow.Errorf(orderflow.EInvalid, "visibility timeout %v is outside 0..%v", timeout, maxVisibility)
	}
	id, err := parseReceipt(receipt)
	if err != nil {
		return err
	}
	return db.writeAtCommit(ctx, func(w *wtx) error {
		res, err := w.exec(w.changeVisibility, ms(w.now.Add(timeout)), id, receipt)
		if err != nil {
			return unavailable(err, "change visibility of message %d", id)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			w.wrote = false // nothing matched, nothing changed
			return staleReceipt(receipt)
		}
		if timeout == 0 {
			w.notify = true
		}
		return nil
	})
}

// Depth counts visible, in-flight and dead messages.
func (db *DB) Depth(ctx context.Context) (orderflow.QueueDepth, error) {
	var visible, total, dead int
	if err := db.rs.depth.QueryRowContext(ctx, ms(db.now())).Scan(&visible, &total, &dead); err != nil {
		return orderflow.QueueDepth{}, db.observe(unavailable(err, "count messages"))
	}
	return orderflow.QueueDepth{Visible: visible, InFlight: total - visible, Dead: dead}, nil
}

// ListDead returns up to max dead messages, oldest first, without removing
// them.
func (db *DB) ListDead(ctx context.Context, max int) ([]orderflow.Delivery, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := db.rs.listDead.QueryContext(ctx, max)
	if err != nil {
		return nil, db.observe(unavailable(err, "list dead messages"))
	}
	defer rows.Close()
	var out []orderflow.Delivery
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.id, &q.body, &q.count); err != nil {
			return nil, db.observe(unavailable(err, "read dead message"))
		}
		out = append(out, delivery(q.id, q.body, q.count))
	}
	if err := rows.Err(); err != nil {
		return nil, db.observe(unavailable(err, "list dead messages"))
	}
	return out, nil
}

// Redrive moves up to max dead messages back to the queue, visible at once
// with their receive count reset, and returns how many moved.
func (db *DB) Redrive(ctx context.Context, max int) (int, error) {
	if max <= 0 {
		return 0, nil
	}
	moved := 0
	err := db.write(ctx, func(w *wtx) error {
		moved = 0
		rows, err := w.selectDead.Query(max)
		if err != nil {
			return unavailable(err, "select dead messages")
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return unavailable(err, "read dead message")
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return unavailable(err, "read dead messages")
		}
		for _, id := range ids {
			if _, err := w.exec(w.redrive, ms(w.now), w.db.writer, int64(w.seq), id); err != nil {
				return unavailable(err, "redrive message %d", id)
			}
			if _, err := w.exec(w.deleteDead, id); err != nil {
				return unavailable(err, "redrive message %d", id)
			}
			moved++
		}
		w.notify = moved > 0
		return nil
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// Purge deletes every dead message, handled by WatchDead or not, and
// returns how many it deleted.
func (db *DB) Purge(ctx context.Context) (int, error) {
	var n int64
	err := db.write(ctx, func(w *wtx) error {
		res, err := w.exec(w.purgeDead)
		if err != nil {
			return unavailable(err, "purge dead messages")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// isConstraint reports whether err is SQLite's constraint violation.
func isConstraint(err error) bool {
	return zs.ErrCode(err).ToPrimary() == zs.ResultConstraint
}

// Policy returns the queue's redelivery policy: Options.VisibilityTimeout
// and Options.MaxReceives.
func (db *DB) Policy(context.Context) (orderflow.QueuePolicy, error) {
	return orderflow.QueuePolicy{VisibilityTimeout: db.opts.VisibilityTimeout, MaxReceives: db.opts.MaxReceives}, nil
}
