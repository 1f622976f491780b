package orderflow

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"
)

func TestLogLimiterWritesARepeatedLineOncePerIntervalWithACount(t *testing.T) {
	var buf logtest.Buffer
	l := NewLogLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour)
	for i := range 100 {
		l.Log(context.Background(), slog.LevelWarn, "disk", "write failed", "i", i)
	}
	l.Log(context.Background(), slog.LevelWarn, "other", "another failure")
	if got := buf.Records(t); len(got) != 2 || got[0]["i"] != 0.0 || got[1]["msg"] != "another failure" {
		t.Fatalf("before the interval ends: got %v, want the first line of each kind", got)
	}
	l.Flush()
	got := buf.Records(t)
	if len(got) != 3 {
		t.Fatalf("after Flush: got %d lines %v, want 3", len(got), got)
	}
	if last := got[2]; last["msg"] != "write failed" || last["i"] != 99.0 || last["repeated"] != 99.0 || last["level"] != "WARN" {
		t.Errorf("summary line: got %v, want the last line held back with repeated=99", last)
	}
	l.Flush()
	if n := len(buf.Records(t)); n != 3 {
		t.Errorf("a second Flush wrote again: %d lines", n)
	}
}

func TestLogLimiterWritesTheCountWhenTheIntervalEnds(t *testing.T) {
	var buf logtest.Buffer
	l := NewLogLimiter(slog.New(slog.NewJSONHandler(&buf, nil)), 20*time.Millisecond)
	for range 3 {
		l.Log(context.Background(), slog.LevelError, "disk", "write failed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := buf.Records(t)
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
