package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/orderflow/orderflow"
)

// PendingOrders finds orders that stayed PENDING (dynamostore.Store's
// SweepPending): up to limit orders created, or last returned, before
// before, each returned to one caller only and again a sweep period later
// at the earliest.
type PendingOrders interface {
	SweepPending(ctx context.Context, before time.Time, limit int) ([]orderflow.Order, error)
}

// Sender sends order messages (orderflow.Queue's Send).
type Sender interface {
	Send(ctx context.Context, msgs ...orderflow.Message) error
}

// SweeperConfig is the Sweeper's timing.
type SweeperConfig struct {
	// After is how long an order stays PENDING before its message is sent
	// again (ORDERFLOW_SWEEP_AFTER).
	After time.Duration
	// Interval is how often the Sweeper looks; 0 means After/4, at least
	// 1s and at most 1min.
	Interval time.Duration
}

// Sweeper re-sends the messages of orders that stayed PENDING too long: in
// the AWS mode the api writes an order before it sends its message, and a
// process that dies between the two leaves an order without a message (see
// awsintake.Intake.Accept). The embedded mode needs none: there the order
// and its message are one transaction. A re-sent message whose original
// is merely waiting is a duplicate, which the processor deletes.
type Sweeper struct {
	cfg   SweeperConfig
	store PendingOrders
	queue Sender
	log   *slog.Logger
	now   func() time.Time
	// ticks returns the ticks of Run and their stop function.
	ticks func(time.Duration) (<-chan time.Time, func())
}

// sweepBatch bounds the orders one Sweep re-sends.
const sweepBatch = 100

// NewSweeper returns a Sweeper that finds orders in store and sends their
// messages on queue, logging to log, on the clock now.
func NewSweeper(cfg SweeperConfig, store PendingOrders, queue Sender, log *slog.Logger, now func() time.Time) *Sweeper {
	if cfg.Interval <= 0 {
		cfg.Interval = min(max(cfg.After/4, time.Second), time.Minute)
	}
	return &Sweeper{cfg: cfg, store: store, queue: queue, log: log, now: now, ticks: ticker}
}

func ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Run sweeps every Interval, batch after batch while batches come back
// full, until ctx ends; then it returns nil. A failed sweep is logged and
// tried again at the next tick.
func (s *Sweeper) Run(ctx context.Context) error {
	ticks, stop := s.ticks(s.cfg.Interval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
		for {
			n, err := s.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				// They come up again one sweep period later.
				s.log.Warn("sweep of pending orders", "err", err)
			}
			if n < sweepBatch {
				break
			}
		}
	}
}

// Sweep re-sends the messages of one batch of orders PENDING since before
// now minus After, and returns how many orders it found. It sends those it
// found even if the search failed part way.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	orders, err := s.store.SweepPending(ctx, s.now().Add(-s.cfg.After), sweepBatch)
	if err != nil {
		err = fmt.Errorf("find pending orders: %w", err)
	}
	if len(orders) == 0 {
		return 0, err
	}
	msgs := make([]orderflow.Message, len(orders))
	for i, o := range orders {
		msgs[i] = orderflow.Message{OrderID: o.ID, RequestID: o.RequestID, TraceParent: o.TraceParent}
		octx := orderflow.ContextWithTraceParent(orderflow.WithOrderID(ctx, o.ID), o.TraceParent)
		s.log.WarnContext(octx, "order still PENDING; sending its message again", "created_at", o.CreatedAt)
	}
	if sendErr := s.queue.Send(ctx, msgs...); sendErr != nil {
		err = errors.Join(err, fmt.Errorf("re-send pending orders: %w", sendErr))
	}
	return len(orders), err
}
