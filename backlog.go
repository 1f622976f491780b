package orderflow

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultBacklogSampleInterval is how often a Backlog counts the queue in
// the SQLite modes. A count there is one read of the file (count(*) over
// the queue table's smallest index: microseconds at a backlog of a few
// thousand, tens of milliseconds at a million), made by each api process:
// five a second cost next to nothing, and a burst between two counts is
// covered by the orders the process admitted since (see Backlog).
const DefaultBacklogSampleInterval = 200 * time.Millisecond

// backlogSampleTimeout bounds one count. A count that takes longer (a
// store that hangs) leaves the backlog unknown, which sheds nothing: the
// write path's own timeout answers for a store that is down.
const backlogSampleTimeout = 2 * time.Second

// Backlog estimates the orders accepted and not yet terminal, so that the
// api can refuse new orders above a bound without a query per request.
// Run counts them every interval (count: the queue's messages waiting or
// in flight, which is what is accepted and not yet acknowledged by a
// processor), and between two counts this process adds the orders it is
// writing and those it wrote since the last count began, so that a burst
// cannot pass the bound by a whole interval's worth of orders. An order
// whose write is still running when a count begins may or may not be in
// that count; it stays added on top until the count after its write
// returned, so the estimate errs high for a moment, never low.
// Admissions of other api processes on the same queue are seen at the
// next count only.
//
// A failed count, no count yet, or Run having returned make the backlog
// unknown: Admit then admits everything (a store that is down fails the
// write itself, with its own error), and Current says so. Safe for
// concurrent use.
type Backlog struct {
	count    func(ctx context.Context) (int, error)
	interval time.Duration
	logs     *LogLimiter

	mu      sync.Mutex
	known   bool
	sampled int // the last count
	writing int // orders admitted whose write has not returned
	written int // orders admitted and written by this process, ever
	base    int // written when the last count began
}

// NewBacklog returns a Backlog that counts with count every interval once
// Run runs, and logs failed counts to log (at most once per
// RepeatedLogInterval).
func NewBacklog(count func(ctx context.Context) (int, error), interval time.Duration, log *slog.Logger) *Backlog {
	if interval <= 0 {
		interval = DefaultBacklogSampleInterval
	}
	return &Backlog{count: count, interval: interval, logs: NewLogLimiter(log, RepeatedLogInterval)}
}

// Run counts at once and then every interval until ctx ends; it returns
// nil then, and the backlog is unknown from then on.
func (b *Backlog) Run(ctx context.Context) error {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	defer func() {
		b.mu.Lock()
		b.known = false
		b.mu.Unlock()
	}()
	for {
		b.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample runs one count. The orders written while it runs, and those
// still being written, stay added on top of it (they may be in it too:
// the estimate errs high, never low).
func (b *Backlog) sample(ctx context.Context) {
	b.mu.Lock()
	start := b.written
	b.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, backlogSampleTimeout)
	n, err := b.count(cctx)
	cancel()
	if ctx.Err() != nil {
		return // stopping: Run marks the backlog unknown
	}
	b.mu.Lock()
	b.known = err == nil
	if err == nil {
		b.sampled, b.base = n, start
	}
	b.mu.Unlock()
	if err != nil {
		b.logs.Log(ctx, slog.LevelWarn, "backlog count", "backlog count failed; not shedding load until a count succeeds", "code", ErrorCode(err), "err", err)
	}
}

// Admit decides on one new order: while the backlog is known and at or
// above max, it returns the backlog and false; otherwise it counts the
// order as being written, returns the backlog before it and true, and
// the caller must call Done once the write has returned.
func (b *Backlog) Admit(max int) (backlog int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.estimate()
	if b.known && n >= max {
		return n, false
	}
	b.writing++
	return n, true
}

// Done ends one Admit: created says the write returned a new order (not a
// failure, nor an idempotent replay of an order counted already).
func (b *Backlog) Done(created bool) {
	b.mu.Lock()
	b.writing--
	if created {
		b.written++
	}
	b.mu.Unlock()
}

// Current returns the estimate and whether it is known.
func (b *Backlog) Current() (backlog int, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.estimate(), b.known
}

// estimate is the last count plus this process's orders not surely in it.
// The caller holds mu.
func (b *Backlog) estimate() int {
	return b.sampled + b.writing + b.written - b.base
}
