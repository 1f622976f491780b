package processor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// Values of the status label of orders_processed_total.
const (
	statusSuccess   = "success"   // COMPLETED
	statusRejected  = "rejected"  // REJECTED
	statusError     = "error"     // FAILED
	statusCancelled = "cancelled" // CANCELLED
)

// Values of the stage label of order_processing_duration_seconds.
const (
	stageInventory = "inventory"
	stageFraud     = "fraud"
	stagePayment   = "payment"
	stageTotal     = "total"
)

type metrics struct {
	processed *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	poison    prometheus.Counter
	retries   *prometheus.CounterVec

	// The children used per order, resolved once: looking a child up by
	// its label values hashes them on every call.
	success, rejected, failed, cancelled prometheus.Counter
	stage                                map[string]prometheus.Observer
}

func newMetrics(env string, reg prometheus.Registerer, depth *depthCollector) (*metrics, error) {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_processed_total",
			Help: orderflow.OrdersProcessedHelp,
		}, []string{"env", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "order_processing_duration_seconds",
			Help:    "Time spent in each stage of an order, and in the whole attempt that finished it (total).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"stage"}),
		poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "processor_poison_messages_total",
			Help: "Queue messages that could not be decoded, each counted once (on its first receive); they are left for the dead-letter queue.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "processor_retries_total",
			Help: "Messages put back for a later attempt, by cause: transient, not_found, poison, busy (the message came back while still in work).",
		}, []string{"reason"}),
	}
	for _, s := range []string{statusSuccess, statusRejected, statusError, statusCancelled} {
		m.processed.WithLabelValues(env, s)
	}
	for _, s := range []string{stageInventory, stageFraud, stagePayment, stageTotal} {
		m.duration.WithLabelValues(s)
	}
	var err error
	if m.processed, err = register(reg, m.processed); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.poison, err = register(reg, m.poison); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	m.success = m.processed.WithLabelValues(env, statusSuccess)
	m.rejected = m.processed.WithLabelValues(env, statusRejected)
	m.failed = m.processed.WithLabelValues(env, statusError)
	m.cancelled = m.processed.WithLabelValues(env, statusCancelled)
	m.stage = map[string]prometheus.Observer{}
	for _, s := range []string{stageInventory, stageFraud, stagePayment, stageTotal} {
		m.stage[s] = m.duration.WithLabelValues(s)
	}
	// The depth gauge reads this processor's queue: it replaces one left
	// by an earlier processor on the same registry.
	if err := reg.Register(depth); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		reg.Unregister(are.ExistingCollector)
		if err := reg.Register(depth); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered
// (a second processor on one registry shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// depthCollector exports queue_messages{queue="main|dlq"} by asking the
// queue at scrape time, at most once per ttl.
type depthCollector struct {
	queue Queue
	ttl   time.Duration
	now   func() time.Time
	log   *slog.Logger
	desc  *prometheus.Desc

	mu    sync.Mutex
	at    time.Time
	depth orderflow.QueueDepth
	ok    bool
}

func newDepthCollector(q Queue, ttl time.Duration, now func() time.Time, log *slog.Logger) *depthCollector {
	return &depthCollector{
		queue: q, ttl: ttl, now: now, log: log,
		desc: prometheus.NewDesc("queue_messages",
			"Approximate messages in the queue: main counts waiting and in-flight messages, dlq the dead-lettered ones.",
			[]string{"queue"}, nil),
	}
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || c.now().Sub(c.at) >= c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d, err := c.queue.Depth(ctx)
		cancel()
		if err != nil {
			// A failed scrape of one gauge must not fail /metrics as a
			// whole; the gauge is left out until the queue answers.
			c.log.Warn("queue depth", "err", err)
			c.ok = false
			return
		}
		c.depth, c.at, c.ok = d, c.now(), true
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.depth.Visible+c.depth.InFlight), "main")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.depth.Dead), "dlq")
}
