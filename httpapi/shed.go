package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// overloadedRetryAfter is the Retry-After of a 503 overloaded, in seconds.
// It is a constant, not the backlog over a processing rate: the api does
// not know the rate (the processors may be other processes, any number of
// them), and the default bound is about 0.6 s of the processor's work, so
// that within a second of the overload easing the backlog is under the
// bound again. Clients should add jitter to it (docs/api.md).
const overloadedRetryAfter = "1"

// shedQuiet is how long POST /orders must go without shedding before the
// "stopped shedding" line is written: under a steady overload the backlog
// hovers at the bound and admits and sheds alternate, which must not
// write a pair of lines each time.
const shedQuiet = orderflow.RepeatedLogInterval

// shedLog writes one line when shedding starts and one when it has
// stopped (no shed for shedQuiet), with the count shed in between.
// Safe for concurrent use.
type shedLog struct {
	log *slog.Logger
	on  atomic.Bool // fast path of accepted: nothing to do while off

	mu          sync.Mutex
	since, last time.Time
	count       int
}

// shed records one order shed at now.
func (l *shedLog) shed(ctx context.Context, now time.Time, backlog, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on.Load() {
		l.on.Store(true)
		l.since, l.count = now, 0
		l.log.WarnContext(ctx, "shedding load: the backlog has reached ORDERFLOW_MAX_BACKLOG; POST /orders answers 503 overloaded", "backlog", backlog, "max_backlog", max)
	}
	l.count++
	l.last = now
}

// accepted records one order accepted at now: the end of a shedding
// spell if none was shed for shedQuiet.
func (l *shedLog) accepted(ctx context.Context, now time.Time, backlog int) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.on.Load() || now.Sub(l.last) < shedQuiet {
		return
	}
	l.on.Store(false)
	l.log.InfoContext(ctx, "stopped shedding load: the backlog is under ORDERFLOW_MAX_BACKLOG", "backlog", backlog, "shed", l.count, "shed_for_ms", l.last.Sub(l.since).Milliseconds())
}

// overloaded answers 503 overloaded to an order refused at backlog.
func (s *server) overloaded(w http.ResponseWriter, r *http.Request, now time.Time, backlog int) {
	s.metrics.shed.Inc()
	s.shed.shed(r.Context(), now, backlog, s.cfg.MaxBacklog)
	w.Header()["Retry-After"] = []string{overloadedRetryAfter}
	s.problem(w, r, codeOverloaded, "too many orders are waiting to be processed (a backlog of "+strconv.Itoa(backlog)+
		" orders, bound "+strconv.Itoa(s.cfg.MaxBacklog)+"); the order was not accepted: retry in "+overloadedRetryAfter+" s", nil)
}

// backlogCollector exports order_backlog, the estimate of Deps.Backlog,
// while it is known (left out while not: no count yet, or the last failed).
type backlogCollector struct {
	backlog Backlog
	desc    *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	if n, ok := c.backlog.Current(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
	}
}

// registerBacklog registers order_backlog_max (max, 0 when shedding is
// off) and, with a backlog, order_backlog.
func (m *metrics) registerBacklog(reg prometheus.Registerer, b Backlog, max int) {
	if b == nil {
		max = 0
	}
	g := register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "order_backlog_max",
		Help: "ORDERFLOW_MAX_BACKLOG: the backlog at which POST /orders answers 503 overloaded; 0 when shedding is off.",
	}))
	g.Set(float64(max))
	if b != nil {
		register(reg, prometheus.Collector(&backlogCollector{backlog: b, desc: prometheus.NewDesc("order_backlog",
			"Orders accepted and not yet terminal, as this api process estimates them for ORDERFLOW_MAX_BACKLOG: the queue's last count (waiting and in flight, every interval) plus the orders this process accepted since; absent while unknown.",
			nil, nil)}))
	}
}
