package orderflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestErrorCodes(t *testing.T) {
	cause := errors.New("connection refused")
	wrapped := fmt.Errorf("get order: %w", Unavailable(cause, "store unreachable"))
	tests := []struct {
		name       string
		err        error
		code, text string
	}{
		{"nil has no code", nil, "", ""},
		{"a plain error is internal", errors.New("boom"), EInternal, "internal error"},
		{"a wrapped domain error keeps its code and detail", wrapped, EUnavailable, "store unreachable"},
		{"Errorf formats the detail", Errorf(ENotFound, "order %s not found", "x"), ENotFound, "order x not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("code: got %q, want %q", got, tt.code)
			}
			if tt.err != nil {
				if got := ErrorDetail(tt.err); got != tt.text {
					t.Errorf("detail: got %q, want %q", got, tt.text)
				}
			}
		})
	}
	if !errors.Is(wrapped, cause) {
		t.Error("the cause is lost in the chain")
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("decode: %w", Invalid("items[0].sku", "items[0].sku must be 1-64 letters")), "items[0].sku"},
		{Errorf(EInvalid, "no field"), ""},
		{errors.New("plain"), ""},
		{nil, ""},
	} {
		if got := ErrorField(c.err); got != c.want {
			t.Errorf("ErrorField(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if got := wrapped.Error(); got != "get order: store unreachable: connection refused" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Code: EConflict}).Error(); got != EConflict {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Code: EConflict, Err: cause}).Error(); got != "conflict: connection refused" {
		t.Errorf("got %q", got)
	}
	be := &BatchError{Failed: map[string]error{"r1": cause}}
	if !strings.Contains(be.Error(), "1 entries failed") {
		t.Errorf("got %q", be.Error())
	}
	if got := (&BatchError{}).Error(); got != "batch: no entries failed" {
		t.Errorf("got %q", got)
	}
}

func TestLogHandlerAddsContextIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test").WithGroup("g")
	ctx := WithOrderID(WithUserID(WithRequestID(context.Background(), "req-1"), "u1"), "o1")
	log.InfoContext(ctx, "hello")
	for _, want := range []string{`"request_id":"req-1"`, `"user_id":"u1"`, `"order_id":"o1"`, `"component":"test"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
	if RequestID(ctx) != "req-1" || UserID(ctx) != "u1" {
		t.Error("ids not readable back from the context")
	}
	buf.Reset()
	log.Info("plain")
	if strings.Contains(buf.String(), "request_id") {
		t.Errorf("got %s, want no request_id without one in the context", buf.String())
	}
}
