package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/httpapi"
	"github.com/orderflow/orderflow/processor"
)

func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(orderflow.LogHandler(h))
}

// serve runs the api, the processor, or both ("serve") until ctx ends,
// then shuts down in order: stop taking requests, drain the processor,
// flush and close the store.
func serve(ctx context.Context, mode string, cfg config, stdout io.Writer) error {
	log := newLogger(cfg, stdout)
	build := currentBuild()
	log.Info("orderflow starting", "mode", mode, "version", build.Version, "revision", build.Revision, "build_date", build.Date, "goversion", build.GoVersion)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg, build)
	tp, shutdownTracing, err := newTracerProvider(ctx, cfg.Tracing, mode)
	if err != nil {
		return err
	}
	// Runs last, after the drain and the backend's close: the spans of the
	// last orders are flushed to the receiver.
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()

	cfg.command = mode
	b, err := openBackend(ctx, cfg, log, reg, tp)
	if err != nil {
		return err
	}
	stopReplica, err := startReplica(cfg, log, reg, stdout)
	if err != nil {
		b.close()
		return err
	}
	defer func() {
		if err := b.close(); err != nil {
			log.Error("close backend", "err", err)
		}
		// After the backend's last writes: the replica gets them too.
		if err := stopReplica(); err != nil {
			log.Error("replica", "err", err)
		}
	}()
	if err := seedStock(ctx, b.stock, cfg.Stock); err != nil {
		return err
	}

	var g group
	var apiSrv *http.Server
	var leaving atomic.Bool // set at SIGTERM: /ready answers 503
	if mode == "serve" || mode == "api" {
		if apiSrv, err = startAPI(ctx, &g, cfg, b, log, reg, tp, &leaving); err != nil {
			return g.abort(err)
		}
	}
	proc := stoppedProcessor
	if mode == "serve" || mode == "processor" {
		if proc, err = startProcessor(ctx, &g, cfg, b, log, reg, tp); err != nil {
			return g.abort(err, apiSrv)
		}
	}

	first := g.wait(ctx, log)
	if apiSrv != nil {
		if first == nil {
			leave(&leaving, cfg.ShutdownDelay, log)
		}
		shutdown(apiSrv, 10*time.Second, log)
	}
	proc()
	return g.finish(first, log)
}

// leave turns the api's /ready to 503 and goes on serving for delay, so
// that the load balancers still sending requests here see it leave and
// stop before the listener closes.
func leave(leaving *atomic.Bool, delay time.Duration, log *slog.Logger) {
	leaving.Store(true)
	if delay > 0 {
		log.Info("not ready: serving on until the shutdown delay ends", "delay", delay.String())
		time.Sleep(delay)
	}
}

// group runs serve's parts, each in its own goroutine, and collects what
// they return: serve's one error path. The first part to stop, with or
// without an error, stops all.
type group struct {
	errc    chan error
	running int
}

// start runs f in a goroutine; its error, prefixed with name, goes to wait
// or finish.
func (g *group) start(name string, f func() error) {
	if g.errc == nil {
		g.errc = make(chan error, 8)
	}
	g.running++
	go func() {
		err := f()
		if err != nil {
			err = fmt.Errorf("%s: %w", name, err)
		}
		g.errc <- err
	}()
}

// wait returns when ctx ends (nil) or when a part stopped (its error).
func (g *group) wait(ctx context.Context, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests and in-flight orders")
		return nil
	case err := <-g.errc:
		g.running--
		log.Error("stopping after a component failed", "err", err)
		return err
	}
}

// finish waits for every part still running, after they were told to
// stop, and returns first or else the first error among theirs.
func (g *group) finish(first error, log *slog.Logger) error {
	for ; g.running > 0; g.running-- {
		if err := <-g.errc; err != nil && first == nil {
			first = err
		}
	}
	log.Info("stopped")
	return first
}

// abort stops the parts started before err, which stopped serve while it
// started: the api's server, if any, is closed and every part awaited.
func (g *group) abort(err error, srvs ...*http.Server) error {
	for _, srv := range srvs {
		if srv != nil {
			srv.Close()
		}
	}
	for ; g.running > 0; g.running-- {
		<-g.errc
	}
	return err
}

// startAPI listens on cfg's api address and serves the api in g.
// The status streams end when ctx does, so that the shutdown need not wait
// for them.
func startAPI(ctx context.Context, g *group, cfg config, b *backend, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider, leaving *atomic.Bool) (*http.Server, error) {
	keys, err := loadAPIKeys(cfg)
	if err != nil {
		return nil, err
	}
	var backlog *orderflow.Backlog
	if cfg.MaxBacklog > 0 {
		backlog = b.newBacklog(log.With("component", "api"))
	}
	h := newAPI(cfg, keys, b, log, reg, tp, ctx.Done(), leaving, backlog)
	srv := httpapi.NewHTTPServer(cfg.APIAddr, h)
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_API_ADDR: %w", err)
	}
	log.Info("api listening", "addr", ln.Addr().String(), "env", cfg.Env, "dev_login", cfg.DevLogin, "max_backlog", cfg.MaxBacklog)
	// The backlog is counted for as long as the api serves (through the
	// shutdown delay too), not until ctx ends: a part of g that returned
	// at ctx's end would race it in g.wait.
	countCtx, stopCount := context.WithCancel(context.WithoutCancel(ctx))
	g.start("api", func() error { defer stopCount(); return ignoreClosed(srv.Serve(ln)) })
	if backlog != nil {
		g.start("backlog count", func() error { return backlog.Run(countCtx) })
	}
	if files := keys.files(cfg); len(files) > 0 {
		g.start("secret files", func() error { return watchSecretFiles(ctx, files, secretPollInterval, log) })
	}
	return srv, nil
}

// stoppedProcessor is the stop function of a processor not started.
func stoppedProcessor() {}

// startProcessor starts in g the processor, its health server and the
// backend's loops, and returns the function that stops them: it drains the
// processor, then shuts its health server down. They run on their own
// context, derived from ctx without its cancellation, so that the
// processor drains after the api stopped taking orders, not at the first
// signal.
func startProcessor(ctx context.Context, g *group, cfg config, b *backend, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider) (stop func(), err error) {
	p, err := newProcessor(cfg, b, log, reg, tp)
	if err != nil {
		return nil, err
	}
	healthSrv := httpapi.NewHTTPServer(cfg.ProcessorAddr, processor.Handler(p.Ready, reg))
	ln, err := net.Listen("tcp", cfg.ProcessorAddr)
	if err != nil {
		return nil, fmt.Errorf("ORDERFLOW_PROCESSOR_ADDR: %w", err)
	}
	log.Info("processor listening", "addr", ln.Addr().String(), "env", cfg.Env)
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	procDone := make(chan struct{})
	g.start("processor", func() error { defer close(procDone); return p.Run(pctx) })
	g.start("processor health", func() error { return ignoreClosed(healthSrv.Serve(ln)) })
	g.start("dead-letter watch", func() error { return p.WatchDeadLetters(pctx) })
	for _, l := range b.loops {
		g.start(l.name, func() error { return l.run(pctx) })
	}
	return func() {
		cancel()
		<-procDone
		shutdown(healthSrv, 5*time.Second, log)
	}, nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func shutdown(srv *http.Server, grace time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", "addr", srv.Addr, "err", err)
	}
}

func newAPI(cfg config, keys *apiKeys, b *backend, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider, done <-chan struct{}, leaving *atomic.Bool, backlog *orderflow.Backlog) http.Handler {
	var bl httpapi.Backlog // nil, not a nil *orderflow.Backlog, when off
	if backlog != nil {
		bl = backlog
	}
	return httpapi.NewServer(httpapi.Config{
		Env:                cfg.Env,
		DevLogin:           cfg.DevLogin,
		Users:              keys.users,
		Tokens:             keys.tokens,
		URLs:               keys.urls,
		StatusURLTTL:       cfg.StatusURLTTL,
		PublicURL:          cfg.PublicURL,
		RateLimit:          cfg.RateLimit,
		LoginRateLimit:     cfg.LoginRateLimit,
		RateLimitProcesses: cfg.RateLimitProcesses,
		TrustedProxies:     cfg.TrustedProxies,
		ClientIPHeader:     cfg.ClientIPHeader,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		RequestTimeout:     cfg.RequestTimeout,
		MaxStreams:         cfg.MaxStreams,
		MaxStreamsPerUser:  cfg.MaxStreamsPerUser,
		MaxBacklog:         cfg.MaxBacklog,
		Version:            currentBuild().Version,
	}, httpapi.Deps{
		Logger:      log.With("component", "api"),
		Registerer:  reg,
		Gatherer:    reg,
		Intake:      b.intake,
		Orders:      b.store,
		Ready:       readyUnlessLeaving(orderflow.NewCachedCheck(time.Second, time.Now, b.ping).Check, leaving),
		Now:         time.Now,
		NewID:       func() orderflow.OrderID { return orderflow.NewOrderIDIn(time.Now(), cfg.region()) },
		RateLimiter: b.limiter,
		Watcher:     b.watcher,
		Backlog:     bl,
		Done:        done,

		TracerProvider: tp,
		TraceIDsOnly:   !cfg.Tracing.exporting(),
	})
}

func newProcessor(cfg config, b *backend, log *slog.Logger, reg *prometheus.Registry, tp trace.TracerProvider) (*processor.Processor, error) {
	return processor.New(processor.Config{
		Env:          cfg.Env,
		Concurrency:  cfg.Concurrency,
		BatchSize:    cfg.BatchSize,
		DrainTimeout: cfg.DrainTimeout,
		DeleteDelay:  cfg.deleteDelay(),

		DeadLetterInterval: cfg.DLQWatchInterval,
		Region:             cfg.region(),
	}, processor.Deps{
		Queue:     b.work.queue,
		Store:     b.work.store,
		Inventory: b.store,
		Fraud: processor.NewRules(processor.RulesConfig{
			Threshold: cfg.FraudThreshold,
			MaxAmount: cfg.FraudMaxAmount,
		}, b.store),
		Payment: processor.NewSimulatedGateway(processor.GatewayConfig{
			Latency:         cfg.PaymentLatency,
			DeclineCents:    cfg.PaymentDeclineCents,
			TransientCents:  cfg.PaymentTransientCents,
			AlwaysFailCents: cfg.PaymentAlwaysFailCents,
		}, b.ledger, time.Now),
		Logger:     log.With("component", "processor"),
		Registerer: reg,
		Now:        time.Now,

		DeadLetters:    b.watch,
		TracerProvider: tp,
	})
}

// readyUnlessLeaving is check, but EUnavailable once leaving is set.
func readyUnlessLeaving(check func(context.Context) error, leaving *atomic.Bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if leaving.Load() {
			return orderflow.Unavailable(nil, "shutting down")
		}
		return check(ctx)
	}
}
