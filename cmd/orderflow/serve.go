package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := openBackend(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.close(); err != nil {
			log.Error("close backend", "err", err)
		}
	}()
	if err := seedStock(ctx, b.stock, cfg.Stock); err != nil {
		return err
	}

	// Each part reports on errc when it stops; the first error stops all.
	errc := make(chan error, 3)
	running := 0
	start := func(name string, f func() error) {
		running++
		go func() {
			err := f()
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errc <- err
		}()
	}

	var apiSrv, healthSrv *http.Server
	if mode == "serve" || mode == "api" {
		h, err := newAPI(cfg, b, log, reg)
		if err != nil {
			return err
		}
		apiSrv = httpapi.NewHTTPServer(cfg.APIAddr, h)
		ln, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			return fmt.Errorf("ORDERFLOW_API_ADDR: %w", err)
		}
		log.Info("api listening", "addr", ln.Addr().String(), "env", cfg.Env, "dev_login", cfg.DevLogin)
		start("api", func() error { return ignoreClosed(apiSrv.Serve(ln)) })
	}
	procDone := make(chan struct{})
	stopProc := func() {}
	if mode == "serve" || mode == "processor" {
		p, err := newProcessor(cfg, b, log, reg)
		if err != nil {
			return err
		}
		healthSrv = httpapi.NewHTTPServer(cfg.ProcessorAddr, processor.Handler(p.Ready, reg))
		ln, err := net.Listen("tcp", cfg.ProcessorAddr)
		if err != nil {
			return fmt.Errorf("ORDERFLOW_PROCESSOR_ADDR: %w", err)
		}
		log.Info("processor listening", "addr", ln.Addr().String(), "env", cfg.Env)
		// The processor drains on its own context, after the api stopped
		// taking orders, not at the first signal.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stopProc = func() { cancel(); <-procDone }
		start("processor", func() error { defer close(procDone); return p.Run(pctx) })
		start("processor health", func() error { return ignoreClosed(healthSrv.Serve(ln)) })
	} else {
		close(procDone)
	}

	var first error
	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests and in-flight orders")
	case first = <-errc:
		running--
		log.Error("stopping after a component failed", "err", first)
	}
	if apiSrv != nil {
		shutdown(apiSrv, 10*time.Second, log)
	}
	stopProc()
	if healthSrv != nil {
		shutdown(healthSrv, 5*time.Second, log)
	}
	for ; running > 0; running-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	log.Info("stopped")
	return first
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

func newAPI(cfg config, b *backend, log *slog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	var users *auth.Users
	if !cfg.DevLogin {
		f, err := os.Open(cfg.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("ORDERFLOW_USERS_FILE: %w", err)
		}
		users, err = auth.LoadUsers(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("ORDERFLOW_USERS_FILE %s: %w", cfg.UsersFile, err)
		}
	}
	return httpapi.NewServer(httpapi.Config{
		Env:            cfg.Env,
		DevLogin:       cfg.DevLogin,
		Users:          users,
		Tokens:         auth.NewTokens(cfg.JWTKeys, cfg.TokenTTL, time.Now),
		URLs:           auth.NewURLSigner(cfg.URLKeys),
		StatusURLTTL:   cfg.StatusURLTTL,
		PublicURL:      cfg.PublicURL,
		RateLimit:      cfg.RateLimit,
		LoginRateLimit: cfg.LoginRateLimit,
		TrustedProxies: cfg.TrustedProxies,
		ClientIPHeader: cfg.ClientIPHeader,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		RequestTimeout: cfg.RequestTimeout,
	}, httpapi.Deps{
		Logger:     log.With("component", "api"),
		Registerer: reg,
		Gatherer:   reg,
		Intake:     b.intake,
		Orders:     b.store,
		Ready:      orderflow.NewCachedCheck(time.Second, time.Now, b.ping).Check,
		Now:        time.Now,
	}), nil
}

func newProcessor(cfg config, b *backend, log *slog.Logger, reg *prometheus.Registry) (*processor.Processor, error) {
	policy := b.queue.Policy() // the queue owns its redelivery policy
	return processor.New(processor.Config{
		Env:               cfg.Env,
		Concurrency:       cfg.Concurrency,
		BatchSize:         cfg.BatchSize,
		VisibilityTimeout: policy.VisibilityTimeout,
		MaxReceives:       policy.MaxReceives,
		DrainTimeout:      cfg.DrainTimeout,
	}, processor.Deps{
		Queue:     b.queue,
		Store:     b.store,
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
	})
}
