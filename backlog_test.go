package orderflow_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/logtest"
)

// runBacklog runs b until the test ends and returns a function that
// stops it and waits until Run has returned.
func runBacklog(t *testing.T, b *orderflow.Backlog) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

func TestBacklogIsUnknownUntilCounted(t *testing.T) {
	b := orderflow.NewBacklog(func(context.Context) (int, error) { return 7, nil }, time.Hour, slog.New(slog.DiscardHandler))
	if _, known := b.Current(); known {
		t.Fatal("known before any count")
	}
	if _, ok := b.Admit(1); !ok {
		t.Error("an unknown backlog refused an order")
	}
}

func TestBacklogCountsAgainAndAgain(t *testing.T) {
	var queued atomic.Int64
	queued.Store(10)
	b := orderflow.NewBacklog(func(context.Context) (int, error) { return int(queued.Load()), nil }, time.Millisecond, slog.New(slog.DiscardHandler))
	runBacklog(t, b)
	waitFor(t, "first count", func() bool { n, known := b.Current(); return known && n == 10 })
	if n, ok := b.Admit(10); ok || n != 10 {
		t.Errorf("Admit(10) at 10 = %d, %v; want 10, false", n, ok)
	}
	queued.Store(3)
	waitFor(t, "a later count sees the drained queue", func() bool { n, _ := b.Current(); return n == 3 })
	if n, ok := b.Admit(10); !ok || n != 3 {
		t.Errorf("Admit(10) at 3 = %d, %v; want 3, true", n, ok)
	}
}

// Between counts the admitted orders add up, and a cancelled one gives its
// place back; the next count, which sees them in the queue, replaces them.
func TestBacklogAddsAdmittedOrdersToTheLastCount(t *testing.T) {
	var queued atomic.Int64
	queued.Store(2)
	b := orderflow.NewBacklog(func(context.Context) (int, error) { return int(queued.Load()), nil }, time.Hour, slog.New(slog.DiscardHandler))
	runBacklog(t, b)
	waitFor(t, "first count", func() bool { _, known := b.Current(); return known })
	for i, want := range []bool{true, true, false} {
		if _, ok := b.Admit(4); ok != want {
			t.Errorf("admit %d: ok = %v, want %v", i+1, ok, want)
		}
	}
	b.Done(true)
	b.Done(false)
	if n, _ := b.Current(); n != 3 {
		t.Errorf("after 2 admitted, 1 written and 1 failed: %d, want 3", n)
	}
}

// An order whose write is still running when a count begins is not in
// that count (its transaction has not committed): it stays added on top
// until a count that began after its write returned, so the estimate
// never drops below what is in the system.
func TestBacklogKeepsAnOrderBeingWrittenAcrossACount(t *testing.T) {
	var queued, counts atomic.Int64
	b := orderflow.NewBacklog(func(context.Context) (int, error) {
		counts.Add(1)
		return int(queued.Load()), nil
	}, time.Millisecond, slog.New(slog.DiscardHandler))
	runBacklog(t, b)
	waitFor(t, "first count", func() bool { _, known := b.Current(); return known })
	if _, ok := b.Admit(10); !ok {
		t.Fatal("refused under the bound")
	}
	after := counts.Load()
	waitFor(t, "a whole count after the admit", func() bool { return counts.Load() >= after+2 })
	if n, _ := b.Current(); n != 1 {
		t.Errorf("with one order being written and none in the queue: %d, want 1", n)
	}
	b.Done(true) // committed: from now on the queue holds it
	queued.Store(1)
	// The next count to start may have taken its base before Done and
	// find the order in the queue too (the estimate errs high for it);
	// the one after it began after Done, and it has finished once a
	// third count starts.
	after = counts.Load()
	waitFor(t, "a whole count that began after the write", func() bool { return counts.Load() >= after+3 })
	if n, _ := b.Current(); n != 1 {
		t.Errorf("with the order in the queue: %d, want 1", n)
	}
}

// A failed count makes the backlog unknown (so nothing is shed for it) and
// is logged once, not once per count; a later count that succeeds makes it
// known again. Once Run returns, the backlog is unknown.
func TestBacklogCountFailureIsUnknown(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	logs := &logtest.Buffer{}
	b := orderflow.NewBacklog(func(context.Context) (int, error) {
		if failing.Load() {
			return 0, orderflow.Unavailable(errors.New("dial tcp: refused"), "count messages")
		}
		return 50, nil
	}, time.Millisecond, slog.New(slog.NewJSONHandler(logs, nil)))
	stop := runBacklog(t, b)
	waitFor(t, "a failed count logged", func() bool { return len(logs.Records(t)) > 0 })
	if _, ok := b.Admit(1); !ok {
		t.Error("admit refused while the count fails")
	}
	b.Done(false)
	failing.Store(false)
	waitFor(t, "known again", func() bool { n, known := b.Current(); return known && n == 50 })
	if n := len(logs.Records(t)); n != 1 {
		t.Errorf("%d log lines for repeated failures, want 1:\n%s", n, logs)
	}
	stop()
	if _, known := b.Current(); known {
		t.Error("known after Run returned")
	}
}
