package orderflow

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	orderIDKey
	userIDKey
)

// WithRequestID returns ctx carrying the request id, which LogHandler adds
// to every log line written with that context.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

// WithOrderID returns ctx carrying the order id for log lines.
func WithOrderID(ctx context.Context, id OrderID) context.Context {
	return context.WithValue(ctx, orderIDKey, id)
}

// WithUserID returns ctx carrying the user id for log lines.
func WithUserID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, userIDKey, id)
}

// UserID returns the user id carried by ctx, or "".
func UserID(ctx context.Context) string {
	s, _ := ctx.Value(userIDKey).(string)
	return s
}

// LogHandler wraps h so that every record logged with a context carrying a
// request, order or user id gets request_id, order_id and user_id
// attributes, and one carrying an OpenTelemetry span context gets trace_id
// and span_id (spans have ids whether or not traces are exported).
func LogHandler(h slog.Handler) slog.Handler { return ctxHandler{h} }

type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if v := RequestID(ctx); v != "" {
		r.AddAttrs(slog.String("request_id", v))
	}
	if v, _ := ctx.Value(orderIDKey).(OrderID); v != "" {
		r.AddAttrs(slog.String("order_id", string(v)))
	}
	if v := UserID(ctx); v != "" {
		r.AddAttrs(slog.String("user_id", v))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(as)}
}

func (h ctxHandler) WithGroup(name string) slog.Handler {
	return ctxHandler{h.Handler.WithGroup(name)}
}
