package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// Config tunes a Processor. A zero field takes its default.
type Config struct {
	// Env is the env label of the metrics.
	Env string
	// Concurrency is how many orders are in work at once (default 64).
	Concurrency int
	// BatchSize is the most messages one Receive asks for (1-10, default 10).
	BatchSize int
	// Receivers is how many receive loops run (default: enough to keep
	// Concurrency busy with BatchSize messages each, at most 4).
	Receivers int
	// WaitTime is the long-poll wait of Receive (default 1s).
	WaitTime time.Duration
	// VisibilityTimeout must match the queue's (default 30s). While an
	// order is in work its visibility is extended every third of it.
	VisibilityTimeout time.Duration
	// MaxReceives must match the queue's dead-letter setting (default 5).
	// The attempt with ReceiveCount ≥ MaxReceives is the last.
	MaxReceives int
	// BackoffBase and BackoffMax bound the retry delay of a message after
	// a transient error (defaults 1s and 30s).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ReceiveBackoffBase and ReceiveBackoffMax bound the pause between
	// failed Receive calls (defaults 100ms and 10s).
	ReceiveBackoffBase time.Duration
	ReceiveBackoffMax  time.Duration
	// DrainTimeout is how long Run waits for orders in work after its
	// context ends (default 25s).
	DrainTimeout time.Duration
	// StageTimeout bounds each call to a stage or the store (default 10s).
	// A call that times out is a transient error.
	StageTimeout time.Duration
	// DeleteDelay is how long a finished message waits for others to be
	// deleted in the same batch (default 5ms).
	DeleteDelay time.Duration
	// GatherDelay is how long a receive loop that found fewer than
	// BatchSize free work slots waits for more to free up before it
	// receives (default 5ms). While the processor is saturated, slots
	// free one at a time; without it every Receive would fetch one or two
	// messages, and a Receive costs about as much for one message as for
	// ten. With free slots to spare it never waits.
	GatherDelay time.Duration
	// ReadyTTL is how long Ready caches its result (default 2s).
	ReadyTTL time.Duration
	// DepthTTL is how long the queue_messages gauge caches Depth (default 1s).
	DepthTTL time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize > c.Concurrency {
		c.BatchSize = c.Concurrency
	}
	if c.Receivers == 0 {
		c.Receivers = min(max(c.Concurrency/c.BatchSize, 1), 4)
	}
	if c.MaxReceives == 0 {
		c.MaxReceives = 5
	}
	def(&c.WaitTime, time.Second)
	def(&c.VisibilityTimeout, 30*time.Second)
	def(&c.BackoffBase, time.Second)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.ReceiveBackoffBase, 100*time.Millisecond)
	def(&c.ReceiveBackoffMax, 10*time.Second)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	def(&c.StageTimeout, 10*time.Second)
	def(&c.DeleteDelay, 5*time.Millisecond)
	def(&c.GatherDelay, 5*time.Millisecond)
	def(&c.ReadyTTL, 2*time.Second)
	def(&c.DepthTTL, time.Second)
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be positive, got %d", c.Concurrency))
	}
	if c.BatchSize < 1 || c.BatchSize > 10 {
		errs = append(errs, fmt.Errorf("batch size must be 1-10, got %d", c.BatchSize))
	}
	if c.Receivers < 1 {
		errs = append(errs, fmt.Errorf("receivers must be positive, got %d", c.Receivers))
	}
	if c.MaxReceives < 1 {
		errs = append(errs, fmt.Errorf("max receives must be positive, got %d", c.MaxReceives))
	}
	if c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("backoff max %s is below backoff base %s", c.BackoffMax, c.BackoffBase))
	}
	if c.ReceiveBackoffMax < c.ReceiveBackoffBase {
		errs = append(errs, fmt.Errorf("receive backoff max %s is below its base %s", c.ReceiveBackoffMax, c.ReceiveBackoffBase))
	}
	for name, d := range map[string]time.Duration{
		"wait time": c.WaitTime, "visibility timeout": c.VisibilityTimeout, "backoff base": c.BackoffBase,
		"receive backoff base": c.ReceiveBackoffBase, "drain timeout": c.DrainTimeout,
		"stage timeout": c.StageTimeout, "delete delay": c.DeleteDelay, "gather delay": c.GatherDelay,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", name, d))
		}
	}
	return errors.Join(errs...)
}

// Deps are what a Processor talks to. Queue, Store, Inventory, Fraud and
// Payment are required.
type Deps struct {
	Queue     Queue
	Store     Store
	Inventory Inventory
	Fraud     Fraud
	Payment   Payment
	// Logger receives one line per order transition; wrap its handler
	// with orderflow.LogHandler to get request_id, order_id and user_id.
	// Default: discard.
	Logger *slog.Logger
	// Registerer receives the metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Processor works orders off a queue; see the package documentation.
type Processor struct {
	cfg     Config
	queue   Queue
	store   Store
	starter ReceiveStarter // the queue, when it is also the store and starts orders
	inv     Inventory
	fraud   Fraud
	pay     Payment
	log     *slog.Logger
	logs    *orderflow.LogLimiter // for lines that repeat while a dependency is down
	now     func() time.Time
	metrics *metrics

	busyMu sync.Mutex
	busy   map[orderflow.OrderID]string // orders in work in this process → message id

	ready *orderflow.CachedCheck // of ping, for ReadyTTL

	runMu   sync.Mutex
	running bool
}

// New checks cfg and deps and returns a Processor whose metrics are
// registered with deps.Registerer.
func New(cfg Config, deps Deps) (*Processor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("processor config: %w", err)
	}
	if deps.Queue == nil || deps.Store == nil || deps.Inventory == nil || deps.Fraud == nil || deps.Payment == nil {
		return nil, errors.New("processor: queue, store, inventory, fraud and payment are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(cfg.Env, deps.Registerer, newDepthCollector(deps.Queue, cfg.DepthTTL, deps.Now, deps.Logger))
	if err != nil {
		return nil, fmt.Errorf("processor metrics: %w", err)
	}
	p := &Processor{
		cfg: cfg, queue: deps.Queue, store: deps.Store, inv: deps.Inventory, fraud: deps.Fraud,
		pay: deps.Payment, log: deps.Logger, now: deps.Now, metrics: m,
		logs:    orderflow.NewLogLimiter(deps.Logger, orderflow.RepeatedLogInterval),
		starter: receiveStarter(deps.Queue, deps.Store),
		busy:    map[orderflow.OrderID]string{},
	}
	p.ready = orderflow.NewCachedCheck(cfg.ReadyTTL, deps.Now, p.ping)
	return p, nil
}

// Run receives and works orders until ctx ends, then drains: it stops
// receiving, lets the orders in work finish, deletes the messages of those
// that finished and returns nil. Orders still in work after DrainTimeout
// are abandoned unchanged and their messages left for redelivery. Run
// returns an error only if it is already running.
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

	// Orders in work outlive ctx (a drain), until the drain times out.
	workCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()

	r := &run{
		p:       p,
		slots:   make(chan struct{}, p.cfg.Concurrency),
		jobs:    make(chan orderflow.Delivery),
		deletes: make(chan string, p.cfg.Concurrency),
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
	deletes chan string // receipts of finished messages
	stopDel chan struct{}
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
		ds, err := p.receiveBatch(ctx, n)
		ds = p.deadLettered(ctx, ds)
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

// receiveBatch receives up to n messages, starting their orders in the
// same call when the queue is also the store and can (ReceiveStarter).
func (p *Processor) receiveBatch(ctx context.Context, n int) ([]orderflow.Delivery, error) {
	if p.starter != nil {
		return p.starter.ReceiveAndStart(ctx, n, p.cfg.WaitTime)
	}
	return p.queue.Receive(ctx, n, p.cfg.WaitTime)
}

// receiveStarter returns q as a ReceiveStarter if it is one and is also
// the store s (the same value; never a comparison that could panic).
func receiveStarter(q Queue, s Store) ReceiveStarter {
	rs, ok := q.(ReceiveStarter)
	if !ok {
		return nil
	}
	t := reflect.TypeOf(q)
	if t != reflect.TypeOf(s) || !t.Comparable() || any(q) != any(s) {
		return nil
	}
	return rs
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
	stop := p.heartbeat(ctx, d.Receipt)
	out := p.process(ctx, d)
	stop()

	switch out.action {
	case actDelete:
		r.deletes <- d.Receipt
	case actRetry:
		p.setVisibility(ctx, d.Receipt, out.delay)
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
	every := p.cfg.VisibilityTimeout / 3
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
		if err := p.queue.ChangeVisibility(ctx, receipt, p.cfg.VisibilityTimeout); err != nil {
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
// DeleteDelay for a batch to fill. It flushes and returns once stopDel is
// closed.
func (r *run) deleter(ctx context.Context) {
	const maxBatch = 10
	var batch []string
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
				timer = time.After(r.p.cfg.DeleteDelay)
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

func (p *Processor) deleteBatch(ctx context.Context, receipts []string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.StageTimeout)
	defer cancel()
	err := p.queue.Delete(ctx, receipts...)
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

// Ready reports whether the queue and the store can be reached. The result
// is cached for ReadyTTL so that probes cannot hammer them.
func (p *Processor) Ready(ctx context.Context) error { return p.ready.Check(ctx) }

// ping checks the queue, then the store.
func (p *Processor) ping(ctx context.Context) error {
	if err := p.queue.Ping(ctx); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if err := p.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
