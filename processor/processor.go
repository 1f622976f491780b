package processor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
)

// Deps are what a Processor talks to. Queue, Store, Inventory, Fraud and
// Payment are required.
type Deps struct {
	Queue     Queue
	Store     Store
	Inventory Inventory
	Fraud     Fraud
	Payment   Payment
	// DeadLetters, if set, is the dead-letter queue whose orders
	// WatchDeadLetters ends.
	DeadLetters DeadLetterSource
	// Logger receives one line per order transition; wrap its handler
	// with orderflow.LogHandler to get request_id, order_id and user_id.
	// Default: discard.
	Logger *slog.Logger
	// Registerer receives the metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TracerProvider makes the spans of each order's processing (see the
	// package documentation, Tracing). Default: none.
	TracerProvider trace.TracerProvider
}

// Processor works orders off a queue; see the package documentation.
type Processor struct {
	cfg     Config
	policy  atomic.Pointer[orderflow.QueuePolicy] // the queue's, once learnt (see learnPolicy)
	queue   Queue
	store   Store
	inv     Inventory
	pay     Payment
	dead    DeadLetterSource
	log     *slog.Logger
	logs    *orderflow.LogLimiter // for lines that repeat while a dependency is down
	now     func() time.Time
	metrics *metrics
	tracer  trace.Tracer
	stages  []step // in order; the last takes the payment

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
		cfg: cfg, queue: deps.Queue, store: deps.Store, inv: deps.Inventory,
		pay: deps.Payment, dead: deps.DeadLetters, log: deps.Logger, now: deps.Now, metrics: m,
		stages: pipeline(deps.Inventory, deps.Fraud, deps.Payment),
		logs:   orderflow.NewLogLimiter(deps.Logger, orderflow.RepeatedLogInterval),
		busy:   map[orderflow.OrderID]string{},
		tracer: tracerOf(deps.TracerProvider),
	}
	p.ready = orderflow.NewCachedCheck(cfg.ReadyTTL, deps.Now, p.ping)
	return p, nil
}

// learnPolicy reads the queue's redelivery policy, which Run needs before
// it receives: it asks until the queue answers (pausing with the receive
// backoff while it cannot be reached) and refuses a policy it cannot
// follow. It returns ctx's error if ctx ends first.
func (p *Processor) learnPolicy(ctx context.Context) error {
	if p.policy.Load() != nil {
		return nil
	}
	for failures := 1; ; failures++ {
		qp, err := p.queue.Policy(ctx)
		if err == nil {
			if err := validatePolicy(qp); err != nil {
				return fmt.Errorf("processor: queue policy: %w", err)
			}
			p.policy.Store(&qp)
			return nil
		}
		if orderflow.ErrorCode(err) != orderflow.EUnavailable {
			return fmt.Errorf("processor: queue policy: %w", err)
		}
		pause := backoff(p.cfg.ReceiveBackoffBase, p.cfg.ReceiveBackoffMax, failures, "policy")
		p.logs.Log(ctx, slog.LevelWarn, "policy", "cannot read the queue's redelivery policy; pausing", "err", err, "failures", failures, "pause", pause)
		if err := sleep(ctx, pause); err != nil {
			return err
		}
	}
}

// queuePolicy is the policy learnPolicy read.
func (p *Processor) queuePolicy() orderflow.QueuePolicy { return *p.policy.Load() }
