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
// processor), and between two counts the orders this process admitted
// since the last count began are added, so that a burst cannot pass the
// bound by a whole interval's worth of orders. Admissions of other api
// processes on the same queue are seen at the next count only.
//
// A failed count, no count yet, or Run having returned make the backlog
// unknown: Admit then admits everything (a store that is down fails the
// write itself, with its own error), and Current says so. Safe for
// concurrent use.
type Backlog struct {
	count    func(ctx context.Context) (int, error)
	interval time.Duration
	logs     *LogLimiter

	mu       sync.Mutex
	known    bool
	sampled  int // the last count
	admitted int // orders admitted by this process, ever (minus those cancelled)
	base     int // admitted when the last count began
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

// sample runs one count. The orders admitted while it runs stay counted on
// top of it (they may be in it too: the estimate errs high for the length
// of one count, never low).
func (b *Backlog) sample(ctx context.Context) {
	b.mu.Lock()
	start := b.admitted
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
// order as admitted (undo with Cancel if it is not accepted after all)
// and returns the backlog before it and true.
func (b *Backlog) Admit(max int) (backlog int, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.sampled + b.admitted - b.base
	if b.known && n >= max {
		return n, false
	}
	b.admitted++
	return n, true
}

// Cancel undoes one Admit whose order was not accepted (the write failed,
// or it was an idempotent replay of an order counted already).
func (b *Backlog) Cancel() {
	b.mu.Lock()
	b.admitted--
	b.mu.Unlock()
}

// Current returns the estimate and whether it is known.
func (b *Backlog) Current() (backlog int, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sampled + b.admitted - b.base, b.known
}
