package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
)

// Intake accepts new orders: it stores the order and enqueues its message,
// honouring the idempotency key. It returns the order as stored and
// created=false when the key was seen before with the same request (an
// idempotent replay). Errors carry orderflow codes: EMismatch for a key
// reused with another request, EConflict for a key whose first request is
// still in flight, EUnavailable when the store or queue cannot be reached.
type Intake interface {
	Accept(ctx context.Context, o orderflow.Order, key orderflow.IdempotencyKey) (orderflow.Order, bool, error)
}

// Backlog estimates the orders accepted and not yet terminal, across
// every api process on the queue (orderflow.Backlog). Admit admits one new
// order unless the backlog, while known, is at or above max (it returns
// the backlog it saw); Done ends an Admit once the write has returned,
// saying whether it created the order; Current is the estimate and
// whether it is known. Safe for concurrent use.
type Backlog interface {
	Admit(max int) (backlog int, ok bool)
	Done(created bool)
	Current() (backlog int, known bool)
}

// Orders reads orders. GetOrder returns ENotFound for an unknown id;
// ListOrders returns up to limit orders of userID, newest first, after the
// cursor ("" for the first page). Both return EUnavailable when the store
// cannot be reached.
type Orders interface {
	GetOrder(ctx context.Context, id orderflow.OrderID) (orderflow.Order, error)
	ListOrders(ctx context.Context, userID string, cursor orderflow.OrderID, limit int) ([]orderflow.Order, error)
	// RequestCancel records a cancel request (orderflow.Store.RequestCancel).
	RequestCancel(ctx context.Context, id orderflow.OrderID, by string, at time.Time) (orderflow.Order, error)
}

// Defaults applied by NewServer to zero Config fields.
const (
	DefaultStatusURLTTL   = 24 * time.Hour
	DefaultRateLimit      = 100 // orders per minute per user
	DefaultLoginRateLimit = 20  // logins per minute per client IP
	// DefaultRateLimitProcesses is the N of the per-process share
	// (limit/N) while the shared limiter store cannot be reached.
	DefaultRateLimitProcesses = 1
	DefaultMaxBodyBytes       = 64 << 10
	DefaultRequestTimeout     = 10 * time.Second
	DefaultPollAfter          = time.Second
	// DefaultMaxBacklog is the backlog (orders accepted and not yet
	// terminal) above which POST /orders sheds load (ORDERFLOW_MAX_BACKLOG's
	// default; Config.MaxBacklog's zero value is off). A new order waits
	// about backlog / processing rate before a processor takes it: the
	// embedded mode completes about 3,200 orders/s on 2 cores, so 2,000
	// orders is about 0.6 s of work, which keeps an accepted order's
	// end-to-end time under a second at any offered load.
	DefaultMaxBacklog = 2000
)

// Config holds the settings of the API. Zero fields take the defaults above.
type Config struct {
	// Env names the deployment ("local", "prod", ...). It is informational.
	Env string
	// DevLogin lets any valid user_id log in without a password (the
	// spec's dev mode). Never enable it outside local development.
	DevLogin bool
	// Users checks passwords when DevLogin is off.
	Users *auth.Users
	// Tokens issues and verifies bearer tokens. Required.
	Tokens *auth.Tokens
	// URLs signs and verifies status URLs. Required.
	URLs *auth.URLSigner
	// StatusURLTTL is how long a status URL stays valid, counted from the
	// order's creation (so a replayed 202 carries the same URL).
	StatusURLTTL time.Duration
	// PublicURL, if set (e.g. "https://api.example.com"), is the base of
	// absolute status URLs; otherwise the request's scheme and Host are used.
	PublicURL string
	// RateLimit is the number of orders per minute a user may create.
	RateLimit int
	// LoginRateLimit is the number of login attempts per minute per client IP.
	LoginRateLimit int
	// RateLimitProcesses is the number of api processes sharing the
	// limits: while Deps.RateLimiter cannot be reached, each process
	// allows RateLimit/RateLimitProcesses (and the same share of
	// LoginRateLimit) on its own. Default 1.
	RateLimitProcesses int
	// TrustedProxies are the load balancers and proxies in front of the
	// api. Only when the peer is one of them is the client IP read from
	// ClientIPHeader (the right-most hop not in this list); empty (the
	// default), the peer is the client.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the header the trusted proxies write the client
	// in: XForwardedFor (the default) or Forwarded.
	ClientIPHeader ForwardedHeader
	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64
	// RequestTimeout is the deadline of each request's context, so that a
	// hanging dependency yields 503 instead of a hanging request.
	RequestTimeout time.Duration
	// PollAfter is the Retry-After given while an order is not terminal.
	PollAfter time.Duration
	// MaxStreams bounds the status requests held open at once (event
	// streams and long-polls) in this process; beyond it 503.
	MaxStreams int
	// MaxStreamsPerUser bounds those of one order owner; beyond it 429.
	MaxStreamsPerUser int
	// StreamHeartbeat is the pause between comment lines that keep an
	// idle event stream open through proxies.
	StreamHeartbeat time.Duration
	// StreamWriteTimeout is how long one event may take to write before
	// the stream is dropped as a slow reader.
	StreamWriteTimeout time.Duration
	// MaxBacklog is the backlog (orders accepted and not yet terminal,
	// as Deps.Backlog estimates it) at which POST /orders answers 503
	// overloaded instead of accepting; 0 (or no Deps.Backlog) sheds
	// nothing.
	MaxBacklog int
	// Version is the binary's version, served as the OpenAPI document's
	// info.version; empty serves the document's own.
	Version string
}

// Deps are the collaborators of the API. Intake and Orders are required;
// the rest have defaults (discard logger, a private registry, always ready,
// time.Now, orderflow.NewOrderID).
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Intake     Intake
	Orders     Orders
	// Ready reports whether the queue and store are reachable; nil error
	// means ready. The caller caches it; /ready calls it on every request.
	Ready func(ctx context.Context) error
	Now   func() time.Time
	NewID func() orderflow.OrderID
	// RateLimiter holds the rate limits' state where every api process
	// sees it (the SQLite file, DynamoDB), so that the limits hold across
	// processes; nil keeps it in this process's memory.
	RateLimiter orderflow.RateLimiter
	// TracerProvider makes the server span of every request, which
	// continues the client's W3C traceparent; an accepted order keeps
	// that span's context for the processor. Default: no spans.
	TracerProvider trace.TracerProvider
	// TraceIDsOnly says that TracerProvider records no span (exporting is
	// off) and serves only the ids of logs and propagation: the server
	// span is then started without otelhttp (see tracing.go).
	TraceIDsOnly bool
	// Watcher tells of order changes for the status streams and
	// long-polls; nil makes each held request look every PollAfter.
	Watcher Watcher
	// Backlog estimates the backlog for Config.MaxBacklog; nil sheds
	// nothing.
	Backlog Backlog
	// Done, closed when the program stops, ends the status streams and
	// long-polls, so that a graceful shutdown need not wait for them.
	Done <-chan struct{}
}

// server is the state shared by the handlers.
type server struct {
	cfg      Config
	openapi  []byte // openapiJSON with cfg.Version
	log      *slog.Logger
	logs     *orderflow.LogLimiter // lines that repeat with every request while a dependency is down
	intake   Intake
	orders   Orders
	ready    func(ctx context.Context) error
	now      func() time.Time
	newID    func() orderflow.OrderID
	gatherer prometheus.Gatherer
	metrics  *metrics
	watcher  Watcher
	streams  *streams
	done     <-chan struct{}
	backlog  Backlog // nil: no shedding
	shed     *shedLog

	mux      *http.ServeMux
	table    []route
	handler  http.Handler
	orderLim *limiter
	loginLim *limiter
	clients  clientIPs
	inflight *inflight
	tokens   *tokenCache
	hdr      headerValues
	idsOnly  *idsOnly // the server span without otelhttp, or nil (see tracing.go)

	publicURL string                // without trailing slash; "" = from the request
	rids      *orderflow.RequestIDs // for requests without a sane X-Request-ID
	retryPoll []string              // Retry-After for pending orders, whole seconds
}

// NewServer returns the HTTP handler of the order API. It panics if a
// required dependency (cfg.Tokens, cfg.URLs, deps.Intake, deps.Orders, and
// cfg.Users unless cfg.DevLogin) is missing: that is a wiring bug.
func NewServer(cfg Config, deps Deps) http.Handler {
	return newServer(cfg, deps).handler
}

func newServer(cfg Config, deps Deps) *server {
	mustHaveRequired(cfg, deps)
	cfg = cfg.withDefaults()
	s := &server{
		cfg:    cfg,
		log:    deps.Logger,
		intake: deps.Intake,
		orders: deps.Orders,
		ready:  deps.Ready,
		now:    deps.Now,
		newID:  deps.NewID,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.logs = orderflow.NewLogLimiter(s.log, orderflow.RepeatedLogInterval)
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() orderflow.OrderID { return orderflow.NewOrderID(s.now()) }
	}
	if s.ready == nil {
		s.ready = func(context.Context) error { return nil }
	}
	reg, gat := deps.Registerer, deps.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gat = r, r
	}
	if gat == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			gat = g
		} else {
			gat = prometheus.NewRegistry()
		}
	}
	s.gatherer = gat
	s.openapi = withInfoVersion(openapiJSON, cfg.Version)
	s.metrics = newMetrics(reg, cfg.Env)
	s.watcher, s.done = deps.Watcher, deps.Done
	s.streams = newStreams(cfg, reg)
	if cfg.MaxBacklog > 0 && deps.Backlog != nil {
		s.backlog = deps.Backlog
	}
	s.metrics.registerBacklog(reg, s.backlog, cfg.MaxBacklog)
	s.shed = &shedLog{log: s.log}

	s.publicURL = strings.TrimRight(cfg.PublicURL, "/")
	s.rids = orderflow.NewRequestIDs()
	s.retryPoll = []string{retryAfterSeconds(cfg.PollAfter)}
	s.orderLim = s.newLimiter("orders", cfg.RateLimit, deps.RateLimiter)
	s.loginLim = s.newLimiter("login", cfg.LoginRateLimit, deps.RateLimiter)
	s.clients = clientIPs{trusted: cfg.TrustedProxies, header: cfg.ClientIPHeader}
	s.inflight = newInflight()
	s.tokens = newTokenCache()
	s.hdr = newHeaderValues()

	s.mux = http.NewServeMux()
	s.table = s.routes()
	for _, rt := range s.table {
		s.mux.Handle(rt.pattern, rt.handler)
	}
	s.handler = s.observe(s.recoverPanics(s.mux))
	if deps.TracerProvider != nil && deps.TraceIDsOnly {
		s.idsOnly = newIDsOnly(deps.TracerProvider)
	} else if deps.TracerProvider != nil {
		s.handler = traced(s.handler, deps.TracerProvider)
	}
	return s
}

// mustHaveRequired panics if cfg or deps lacks what NewServer requires.
func mustHaveRequired(cfg Config, deps Deps) {
	switch {
	case cfg.Tokens == nil:
		panic("httpapi: Config.Tokens is required")
	case cfg.URLs == nil:
		panic("httpapi: Config.URLs is required")
	case !cfg.DevLogin && cfg.Users == nil:
		panic("httpapi: Config.Users is required unless DevLogin")
	case deps.Intake == nil || deps.Orders == nil:
		panic("httpapi: Deps.Intake and Deps.Orders are required")
	}
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.StatusURLTTL <= 0 {
		cfg.StatusURLTTL = DefaultStatusURLTTL
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.LoginRateLimit <= 0 {
		cfg.LoginRateLimit = DefaultLoginRateLimit
	}
	if cfg.RateLimitProcesses <= 0 {
		cfg.RateLimitProcesses = DefaultRateLimitProcesses
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.PollAfter <= 0 {
		cfg.PollAfter = DefaultPollAfter
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if cfg.StreamHeartbeat <= 0 {
		cfg.StreamHeartbeat = DefaultStreamHeartbeat
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	return cfg
}

// NewHTTPServer returns an *http.Server for h on addr with timeouts that
// bound slow clients: 5 s to send the headers, 15 s for the whole request,
// 30 s to write the response, 2 min idle keep-alive, 64 KiB of headers.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// retryAfterSeconds renders d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strconv.FormatInt(secs, 10)
}
