package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow"
)

// Defaults of the status streams (Config).
const (
	DefaultMaxStreams         = 10000
	DefaultMaxStreamsPerUser  = 20
	DefaultStreamHeartbeat    = 15 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
	// MaxPreferWait caps Prefer: wait=N on the status URL, in seconds.
	MaxPreferWait = 60
)

// Watcher tells of changes to orders; see orderflow.Watcher.
type Watcher interface {
	Watch(ctx context.Context, id orderflow.OrderID) <-chan struct{}
}

// streams bounds the held status requests (event streams and long-polls):
// in total and per order owner (a status URL carries no token; the owner
// is the order's user).
type streams struct {
	total, perUser int
	gauge          prometheus.Gauge
	rejected       *prometheus.CounterVec
	rereads        prometheus.Counter

	mu     sync.Mutex
	n      int
	byUser map[string]int
}

func newStreams(cfg Config, reg prometheus.Registerer) *streams {
	st := &streams{total: cfg.MaxStreams, perUser: cfg.MaxStreamsPerUser, byUser: map[string]int{}}
	st.gauge = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "status_streams",
		Help: "Status requests held open now: event streams (Accept: text/event-stream) and long-polls (Prefer: wait).",
	}))
	st.rejected = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "status_streams_rejected_total",
		Help: "Held status requests refused at a cap: limit=user (429, ORDERFLOW_MAX_STREAMS_PER_USER) or total (503, ORDERFLOW_MAX_STREAMS).",
	}, []string{"limit"}))
	st.rereads = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "status_stream_reads_total",
		Help: "Store reads of one order by held status requests after a change signal (the first read of each request is its status request).",
	}))
	return st
}

// acquire takes a place for a stream of user's order. It returns the
// function that gives it back, or the error code of the cap it hit.
func (st *streams) acquire(user string) (release func(), code string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.n >= st.total:
		st.rejected.WithLabelValues("total").Inc()
		return nil, codeStreamsFull
	case st.byUser[user] >= st.perUser:
		st.rejected.WithLabelValues("user").Inc()
		return nil, codeTooManyStreams
	}
	st.n++
	st.byUser[user]++
	st.gauge.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.n--
			if st.byUser[user]--; st.byUser[user] <= 0 {
				delete(st.byUser, user)
			}
			st.gauge.Dec()
		})
	}, ""
}

// wantsEventStream reports whether r asks for text/event-stream.
func wantsEventStream(r *http.Request) bool {
	for _, a := range r.Header["Accept"] {
		for _, t := range strings.Split(a, ",") {
			mt, _, _ := strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// preferWait is the wait preference of r (RFC 7240 §4.3) in seconds,
// capped at MaxPreferWait; 0 if absent or not a number (a preference the
// server cannot honour is ignored, as RFC 7240 asks).
func preferWait(r *http.Request) int {
	for _, f := range r.Header["Prefer"] {
		for _, p := range strings.Split(f, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			val, _, _ = strings.Cut(val, ";")
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n <= 0 {
				return 0
			}
			return min(n, MaxPreferWait)
		}
	}
	return 0
}

// heldTimeout is the context deadline the request r gets: RequestTimeout,
// plus its wait for a long-poll of the status URL; none (0, false) for an
// event stream of it, which ends at the URL's expiry, at the terminal
// status or when the client goes.
func (s *server) heldTimeout(r *http.Request) (time.Duration, bool) {
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/status") {
		return s.cfg.RequestTimeout, true
	}
	if wantsEventStream(r) {
		return 0, false
	}
	return s.cfg.RequestTimeout + time.Duration(preferWait(r))*time.Second, true
}

// watch subscribes to the changes of order id until ctx ends. Without a
// Watcher it looks every PollAfter (a server wired without one).
func (s *server) watch(ctx context.Context, id orderflow.OrderID) <-chan struct{} {
	if s.watcher != nil {
		return s.watcher.Watch(ctx, id)
	}
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(s.cfg.PollAfter)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}

// reread reads order id again after a change signal, with the request
// timeout (a stream's own context has none).
func (s *server) reread(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	s.streams.rereads.Inc()
	return s.orders.GetOrder(orderflow.WithOrderID(ctx, id), id)
}

// refuseHeld answers a held request that hit a cap: 429 (the owner's cap)
// or 503 (the total), with Retry-After.
func (s *server) refuseHeld(w http.ResponseWriter, r *http.Request, code string) {
	h := w.Header()
	delete(h, "Etag")
	h["Retry-After"] = []string{retryAfterSeconds(s.cfg.PollAfter * 5)}
	detail := "too many status streams for this order's owner; poll the status URL or retry later"
	if code == codeStreamsFull {
		detail = "the server holds as many status streams as it may; poll the status URL or retry later"
	}
	s.problem(w, r, code, detail, nil)
}
