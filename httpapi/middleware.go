package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/auth"
)

// observe is the outermost middleware. It gives the request its id (the
// client's X-Request-ID if sane, else a new one), sets the security and
// cache headers every response carries, bounds the request's context by
// RequestTimeout, and afterwards records the metrics and writes the one log
// line of the request.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rid := s.rids.Take(r.Header.Get("X-Request-Id"))
		h := w.Header()
		h["X-Request-Id"] = []string{rid}
		h["X-Content-Type-Options"] = s.hdr.nosniff
		h["Referrer-Policy"] = s.hdr.noReferrer
		h["X-Frame-Options"] = s.hdr.deny
		h["Content-Security-Policy"] = s.hdr.cspAPI
		h["Cache-Control"] = s.hdr.noStore

		ctx := r.Context()
		if s.idsOnly != nil {
			var span trace.Span
			ctx, span = s.idsOnly.start(ctx, r)
			defer span.End()
		}
		ctx = orderflow.WithRequestID(ctx, rid)
		if d, ok := s.heldTimeout(r); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w, s: s, req: r, status: http.StatusOK}
		next.ServeHTTP(rec, r)

		elapsed := time.Since(start)
		method, route := methodLabel(r.Method), routeOf(r)
		s.metrics.observe(method, route, rec.status, elapsed)
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.SetName(method + " " + route)
		}
		if level := requestLogLevel(route, rec.status); s.log.Enabled(ctx, level) {
			// The request's context would add request_id again (and not
			// the user, which only the inner handlers' contexts carry).
			sc := span.SpanContext()
			s.log.LogAttrs(context.Background(), level, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", rec.bytes),
				slog.String("request_id", rid),
				slog.String("user_id", rec.userID),
				slog.String("trace_id", traceID(sc)),
				slog.String("span_id", spanID(sc)),
			)
		}
	})
}

// recoverPanics turns a panicking handler into a logged 500 problem.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "handler panicked",
				"route", routeOf(r), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rec, ok := w.(*recorder); ok && rec.wroteHeader {
				return // too late for a problem document; the response is cut short
			}
			h := w.Header()
			for _, k := range []string{"Location", "Etag", "Retry-After", "Idempotent-Replayed", "Content-Length"} {
				delete(h, k)
			}
			s.problem(w, r, orderflow.EInternal, "internal error; quote the request id when reporting it", nil)
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid bearer token and puts its subject (the
// user id) into the request context.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.problem(w, r, codeUnauthorized, "missing bearer token: send Authorization: Bearer <access_token> from POST /login", nil)
			return
		}
		now := s.now()
		user, cached := s.tokens.get(tok, now)
		var err error
		if !cached {
			var expires time.Time
			if user, expires, err = s.cfg.Tokens.VerifyExpiry(tok); err == nil {
				s.tokens.put(tok, user, now, expires)
			}
		}
		if err != nil {
			detail := "invalid token"
			if errors.Is(err, auth.ErrInvalidToken) {
				detail = err.Error() // auth promises these messages are safe to show
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderflow", error="invalid_token"`)
			s.problem(w, r, codeUnauthorized, detail, nil)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.userID = user
		}
		next.ServeHTTP(w, r.WithContext(orderflow.WithUserID(r.Context(), user)))
	})
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimLeft(h[len(scheme):], " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// routeOf is the route label of r: its mux pattern without the method
// and without the exact-match marker {$} ("/orders/{id}", "/"), or
// "unmatched". Raw paths never become labels.
// requestLogLevel is the level of a request's log line: DEBUG for the
// probes and scrapes (/health, /ready, /metrics), which come every few
// seconds from every load balancer, kubelet and Prometheus and would bury
// the requests of users at INFO, unless they answered a server error (a
// /ready at 503 tells why a process left the load balancer); INFO for the
// rest.
func requestLogLevel(route string, status int) slog.Level {
	switch route {
	case "/health", "/ready", "/metrics":
		if status < 500 {
			return slog.LevelDebug
		}
	}
	return slog.LevelInfo
}

func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		return strings.TrimSuffix(path, "{$}")
	}
	return r.Pattern
}

// methodLabel bounds the method label to the known methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// traceID and spanID render the ids of sc for the request's log line, ""
// without a span (a server built without a TracerProvider).
func traceID(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

func spanID(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return sc.SpanID().String()
}
