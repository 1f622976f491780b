package processor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
)

// Run receives and works orders until ctx ends, then drains: it stops
// receiving, lets the orders in work finish, deletes the messages of those
// that finished and returns nil. Orders still in work after DrainTimeout
// are abandoned unchanged and their messages left for redelivery. Before
// it receives, Run reads the queue's redelivery policy, waiting while the
// queue cannot be reached. Run returns an error only if it is already
// running or the queue's policy is one it cannot follow.
func (p *Processor) Run(ctx context.Context) error {
	p.runMu.Lock()
	if p.running {
		p.runMu.Unlock()
		return errors.New("processor: already running")
	}
	p.running = true
	p.runMu.Unlock()
	defer func() {
		p.logs.Flush()
		p.runMu.Lock()
		p.running = false
		p.runMu.Unlock()
	}()
	if err := p.learnPolicy(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it could start
		}
		return err
	}

	// Orders in work outlive ctx (a drain), until the drain times out.
	workCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()

	r := &run{
		p:       p,
		slots:   make(chan struct{}, p.cfg.Concurrency),
		jobs:    make(chan orderflow.Delivery),
		deletes: make(chan finished, p.cfg.Concurrency),
		stopDel: make(chan struct{}),
	}
	delDone := make(chan struct{})
	go func() { defer close(delDone); r.deleter(workCtx) }()
	// One long-lived goroutine per work slot rather than one per order: a
	// new goroutine starts with a small stack and grows it (copying) on
	// nearly every order, 2% of the server's CPU in cmd/bench.
	for range p.cfg.Concurrency {
		go func() {
			for d := range r.jobs {
				r.handle(workCtx, d)
			}
		}()
	}

	var receivers sync.WaitGroup
	for range p.cfg.Receivers {
		receivers.Add(1)
		go func() { defer receivers.Done(); r.receive(ctx) }()
	}
	p.log.Info("processor started", "concurrency", p.cfg.Concurrency, "batch_size", p.cfg.BatchSize, "receivers", p.cfg.Receivers)
	receivers.Wait()
	close(r.jobs) // the workers exit once their orders are done

	inWork := make(chan struct{})
	go func() { r.work.Wait(); close(inWork) }()
	drain := time.NewTimer(p.cfg.DrainTimeout)
	defer drain.Stop()
	select {
	case <-inWork:
		p.log.Info("processor drained")
	case <-drain.C:
		p.log.Warn("drain timeout: abandoning orders in work; their messages will be redelivered", "drain_timeout", p.cfg.DrainTimeout)
		abandon()
		// Stages return promptly once their context ends; one that does
		// not is not waited for past a short grace.
		grace := time.NewTimer(abandonGrace)
		defer grace.Stop()
		select {
		case <-inWork:
		case <-grace.C:
			p.log.Error("orders still in work after the drain grace; exiting anyway")
		}
	}
	close(r.stopDel)
	<-delDone
	return nil
}

// abandonGrace is how long Run waits for stages to notice an abandon.
const abandonGrace = 2 * time.Second

// run is the state of one Run.
type run struct {
	p       *Processor
	slots   chan struct{}           // one token per order in work
	jobs    chan orderflow.Delivery // to the workers, one per slot
	work    sync.WaitGroup
	deletes chan finished
	stopDel chan struct{}
}

// finished is a message to delete: its receipt and the span of its order's
// processing, which the delete's span links to.
type finished struct {
	receipt string
	span    trace.SpanContext
}

// receive is one receive loop: it keeps up to Concurrency orders in work
// and pauses with backoff while Receive fails.
func (r *run) receive(ctx context.Context) {
	p := r.p
	failures := 0
	for {
		n := r.acquire(ctx, p.cfg.BatchSize)
		if n == 0 {
			return
		}
		began := time.Now()
		ds, err := p.queue.Receive(ctx, n, p.cfg.WaitTime)
		p.traceReceive(began, ds, err)
		for i, d := range ds {
			if i >= n {
				r.slots <- struct{}{} // more than asked for: still ours to work
			}
			r.work.Add(1)
			r.jobs <- d
		}
		for range n - min(len(ds), n) {
			<-r.slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			pause := backoff(p.cfg.ReceiveBackoffBase, p.cfg.ReceiveBackoffMax, failures, "receive")
			p.logs.Log(ctx, slog.LevelWarn, "receive", "receive failed; pausing", "err", err, "failures", failures, "pause", pause)
			if sleep(ctx, pause) != nil {
				return
			}
			continue
		}
		if failures > 0 {
			p.log.Info("receive recovered", "after_failures", failures)
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// acquire takes at least one and up to n work slots, waiting for the first
// one; it returns 0 when ctx ends first. If fewer than n are free, it
// waits up to GatherDelay for more (see Config.GatherDelay).
func (r *run) acquire(ctx context.Context, n int) int {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	got := 1
	for got < n {
		select {
		case r.slots <- struct{}{}:
			got++
			continue
		default:
		}
		break
	}
	if got == n || r.p.cfg.GatherDelay <= 0 {
		return got
	}
	t := time.NewTimer(r.p.cfg.GatherDelay)
	defer t.Stop()
	for got < n {
		select {
		case r.slots <- struct{}{}:
			got++
		case <-t.C:
			return got
		case <-ctx.Done():
			return got
		}
	}
	return got
}

// handle works one delivery and acts on the outcome.
func (r *run) handle(ctx context.Context, d orderflow.Delivery) {
	defer r.work.Done()
	defer func() { <-r.slots }()
	p := r.p
	// The attempt's own cancel context: each call below derives a timeout
	// context, which registers with its nearest cancelable ancestor. With
	// the run's context, shared by every order in work, as that ancestor,
	// the registrations contended on its channel (1.5% of the server's CPU
	// in cmd/bench, 0.3% with one context per attempt).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = orderflow.WithRequestID(ctx, d.RequestID)
	if d.Err == nil {
		ctx = orderflow.WithOrderID(ctx, d.OrderID)
	}
	ctx, span := p.startOrderSpan(ctx, spanProcess, d.TraceParent, d)
	stop := p.heartbeat(ctx, d.Receipt)
	out := p.process(ctx, d)
	stop()
	span.End()

	switch out.action {
	case actDelete:
		r.deletes <- finished{d.Receipt, span.SpanContext()}
	case actRetry:
		p.setVisibility(ctx, d.Receipt, out.delay)
	case actDeadLetter:
		// Visible at once, so that the queue moves it to the dead-letter
		// queue on its next receive, promptly.
		p.setVisibility(ctx, d.Receipt, 0)
	case actAbandon:
		// The drain timed out: put the message back for another worker
		// at once, with a context that is still alive.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		p.setVisibility(actx, d.Receipt, 0)
		cancel()
	}
}

func (p *Processor) setVisibility(ctx context.Context, receipt string, d time.Duration) {
	if err := p.queue.ChangeVisibility(ctx, receipt, d); err != nil {
		// The message comes back after its visibility timeout anyway.
		p.log.WarnContext(ctx, "change visibility", "err", err, "timeout", d)
	}
}

// heartbeat extends the visibility of receipt every third of the
// visibility timeout until the returned stop is called; stop waits for
// an extension in progress to end, so that it cannot undo a later
// visibility change. It uses a timer rather than a goroutine per order:
// most orders finish long before the first extension is due.
func (p *Processor) heartbeat(ctx context.Context, receipt string) (stop func()) {
	every := p.queuePolicy().VisibilityTimeout / 3
	if every <= 0 {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		if err := p.queue.ChangeVisibility(ctx, receipt, p.queuePolicy().VisibilityTimeout); err != nil {
			p.log.WarnContext(ctx, "extend visibility", "err", err)
		}
		t.Reset(every)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// deleter deletes finished messages in batches of up to 10, waiting up to
// deleteWindow for a batch to fill. It flushes and returns once stopDel is
// closed.
func (r *run) deleter(ctx context.Context) {
	const maxBatch = 10
	window := r.p.deleteWindow()
	var batch []finished
	var timer <-chan time.Time
	flush := func() {
		if len(batch) > 0 {
			r.p.deleteBatch(ctx, batch)
		}
		batch, timer = nil, nil
	}
	for {
		select {
		case rc := <-r.deletes:
			batch = append(batch, rc)
			if len(batch) >= maxBatch {
				flush()
			} else if timer == nil {
				timer = time.After(window)
			}
		case <-timer:
			flush()
		case <-r.stopDel:
			for {
				select {
				case rc := <-r.deletes:
					batch = append(batch, rc)
					if len(batch) >= maxBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// deleteWindow is DeleteDelay, capped at a third of the queue's
// visibility timeout: a finished message is hidden for at least two
// thirds of it after its last extension (heartbeat), and is deleted well
// before it could come back.
func (p *Processor) deleteWindow() time.Duration {
	if vt := p.queuePolicy().VisibilityTimeout; vt > 0 && p.cfg.DeleteDelay > vt/3 {
		return vt / 3
	}
	return p.cfg.DeleteDelay
}

func (p *Processor) deleteBatch(ctx context.Context, batch []finished) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StageTimeout)
	defer cancel()
	receipts := make([]string, len(batch))
	for i, f := range batch {
		receipts[i] = f.receipt
	}
	began := time.Now()
	err := p.queue.Delete(ctx, receipts...)
	p.traceBatch(spanDelete, began, len(batch), func(i int) trace.SpanContext { return batch[i].span }, err)
	if err == nil {
		return
	}
	// A message that was not deleted comes back; its order is terminal by
	// now, so the redelivery is deleted without side effects.
	var be *orderflow.BatchError
	if errors.As(err, &be) {
		for rc, e := range be.Failed {
			p.log.Warn("delete message; it will be redelivered and deleted then", "receipt", rc, "err", e)
		}
		return
	}
	p.log.Warn("delete messages; they will be redelivered and deleted then", "count", len(receipts), "err", err)
}

// traceReceive records the span of a receive that returned messages, with
// a link to the trace of each (see traceBatch).
func (p *Processor) traceReceive(began time.Time, ds []orderflow.Delivery, err error) {
	p.traceBatch(spanReceive, began, len(ds), func(i int) trace.SpanContext {
		return orderflow.SpanContextOf(ds[i].TraceParent)
	}, err)
}
