package httpapi

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// metrics are the API's Prometheus collectors; their names are fixed by
// DESIGN.md because dashboards and alerts depend on them.
type metrics struct {
	requests *prometheus.CounterVec   // http_requests_total{method,route,code}
	duration *prometheus.HistogramVec // http_request_duration_seconds{method,route}
	accepted prometheus.Counter       // orders_accepted_total
	shed     prometheus.Counter       // orders_shed_total: 503 overloaded (see shed.go)
	// rate_limit_fallbacks_total{limit}: decisions made by a process's
	// own limit because the shared limiter's store was unreachable.
	limitFallbacks *prometheus.CounterVec
	// orders_processed_total{env,status="cancelled"}: the PENDING orders
	// this process cancelled (the processor counts the ones it ends). The
	// vector is the processor's, shared when both run in one process.
	cancelled prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, env string) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_accepted_total",
			Help: "Orders accepted by POST /orders (idempotent replays not counted).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orders_shed_total",
			Help: "Orders refused by POST /orders with 503 overloaded because the backlog had reached ORDERFLOW_MAX_BACKLOG.",
		}),
		limitFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rate_limit_fallbacks_total",
			Help: "Rate-limit decisions (limit=orders|login) made by this process's own limit of limit/ORDERFLOW_RATE_LIMIT_PROCESSES because the shared limiter's store could not be reached.",
		}, []string{"limit"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.accepted = register(reg, m.accepted)
	m.shed = register(reg, m.shed)
	m.limitFallbacks = register(reg, m.limitFallbacks)
	processed := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orders_processed_total",
		Help: orderflow.OrdersProcessedHelp,
	}, []string{"env", "status"}))
	m.cancelled = processed.WithLabelValues(env, "cancelled")
	return m
}

// register registers c, or returns the collector already registered under
// the same name (so that two servers may share a registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("httpapi: register metrics: " + err.Error())
	}
	return c
}

// observe records one answered request.
func (m *metrics) observe(method, route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(method, route, statusLabel(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// statusLabel renders common statuses without allocating.
func statusLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 202:
		return "202"
	case 304:
		return "304"
	case 400:
		return "400"
	case 401:
		return "401"
	case 404:
		return "404"
	case 422:
		return "422"
	case 429:
		return "429"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}
