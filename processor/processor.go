package processor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	policy  orderflow.QueuePolicy // the queue's, which it redelivers by
	queue   Queue
	store   Store
	inv     Inventory
	pay     Payment
	log     *slog.Logger
	logs    *orderflow.LogLimiter // for lines that repeat while a dependency is down
	now     func() time.Time
	metrics *metrics
	stages  []step // in order; the last takes the payment

	busyMu sync.Mutex
	busy   map[orderflow.OrderID]string // orders in work in this process → message id

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
	readyOK  bool

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
	policy := deps.Queue.Policy()
	if err := validatePolicy(policy); err != nil {
		return nil, fmt.Errorf("processor: queue policy: %w", err)
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
	return &Processor{
		cfg: cfg, policy: policy, queue: deps.Queue, store: deps.Store, inv: deps.Inventory,
		pay: deps.Payment, log: deps.Logger, now: deps.Now, metrics: m,
		stages: pipeline(deps.Inventory, deps.Fraud, deps.Payment),
		logs:   orderflow.NewLogLimiter(deps.Logger, orderflow.RepeatedLogInterval),
		busy:   map[orderflow.OrderID]string{},
	}, nil
}
