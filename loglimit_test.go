package orderflow

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink that the limiter's timer may write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogLimiterWritesARepeatedLineOncePerIntervalWithACount(t *testing.T) {
	var buf syncBuffer
	l := NewLogLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	for i := range 100 {
		l.Log(context.Background(), slog.LevelWarn, "disk", "write failed", "i", i)
	}
	l.Log(context.Background(), slog.LevelWarn, "other", "another failure")
	if got := buf.lines(t); len(got) != 2 || got[0]["i"] != 0.0 || got[1]["msg"] != "another failure" {
		t.Fatalf("before the interval ends: got %v, want the first line of each kind", got)
	}
	l.Flush()
	got := buf.lines(t)
	if len(got) != 3 {
		t.Fatalf("after Flush: got %d lines %v, want 3", len(got), got)
	}
	if last := got[2]; last["msg"] != "write failed" || last["i"] != 99.0 || last["repeated"] != 99.0 || last["level"] != "WARN" {
		t.Errorf("summary line: got %v, want the last line held back with repeated=99", last)
	}
	l.Flush()
	if n := len(buf.lines(t)); n != 3 {
		t.Errorf("a second Flush wrote again: %d lines", n)
	}
}

func TestLogLimiterWritesTheCountWhenTheIntervalEnds(t *testing.T) {
	var buf syncBuffer
	l := NewLogLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), 20*time.Millisecond)
	for range 3 {
		l.Log(context.Background(), slog.LevelError, "disk", "write failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := buf.lines(t)
		if len(got) == 2 {
			if got[1]["repeated"] != 2.0 {
				t.Fatalf("summary line: got %v, want repeated=2", got[1])
			}
			return
		}
		if len(got) > 2 || time.Now().After(deadline) {
			t.Fatalf("got %v, want the first line and one summary", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
