package orderflow

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

const testTraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestTraceParentRoundTrips(t *testing.T) {
	ctx := ContextWithTraceParent(context.Background(), testTraceParent)
	if got := TraceParent(ctx); got != testTraceParent {
		t.Errorf("TraceParent of its own context: got %q, want %q", got, testTraceParent)
	}
	sc := SpanContextOf(testTraceParent)
	if !sc.IsValid() || !sc.IsRemote() || !sc.IsSampled() || sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("SpanContextOf: got %+v, want the remote sampled span context", sc)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-b7ad6b7169203331-01"} {
		if ctx := ContextWithTraceParent(context.Background(), bad); TraceParent(ctx) != "" {
			t.Errorf("traceparent %q gave a span context %q, want none", bad, TraceParent(ctx))
		}
		if SpanContextOf(bad).IsValid() {
			t.Errorf("SpanContextOf(%q) is valid", bad)
		}
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil)))
	log.InfoContext(ContextWithTraceParent(context.Background(), testTraceParent), "traced")
	for _, want := range []string{`"trace_id":"0af7651916cd43dd8448eb211c80319c"`, `"span_id":"b7ad6b7169203331"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %s lacks %s", buf.String(), want)
		}
	}
	buf.Reset()
	log.InfoContext(context.Background(), "plain")
	if strings.Contains(buf.String(), "trace_id") {
		t.Errorf("got %s, want no trace_id without a span in the context", buf.String())
	}
}
