package orderflow

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCachedCheckRunsOncePerTTL(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var runs int
	var fail error
	c := NewCachedCheck(2*time.Second, func() time.Time { return now }, func(context.Context) error {
		runs++
		return fail
	})
	ctx := context.Background()
	if err := c.Check(ctx); err != nil || runs != 1 {
		t.Fatalf("first Check = %v after %d runs, want nil after 1", err, runs)
	}
	fail = errors.New("down")
	now = now.Add(time.Second)
	if err := c.Check(ctx); err != nil || runs != 1 {
		t.Errorf("within the TTL: Check = %v after %d runs, want the cached nil after 1", err, runs)
	}
	now = now.Add(time.Second)
	if err := c.Check(ctx); !errors.Is(err, fail) || runs != 2 {
		t.Errorf("at the TTL: Check = %v after %d runs, want %v after 2", err, runs, fail)
	}
	fail = nil
	now = now.Add(time.Second)
	if err := c.Check(ctx); err == nil || runs != 2 {
		t.Errorf("a failure is cached too: Check = %v after %d runs, want the error after 2", err, runs)
	}
}

func TestCachedCheckKeepsNothingFromACallerThatGaveUp(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var runs int
	c := NewCachedCheck(time.Minute, func() time.Time { return now }, func(ctx context.Context) error {
		runs++
		return ctx.Err()
	})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Check(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with a cancelled context = %v, want context.Canceled", err)
	}
	before := runs
	if err := c.Check(context.Background()); err != nil || runs != before+1 {
		t.Errorf("Check after a cancelled caller = %v after %d runs, want a fresh nil after %d", err, runs, before+1)
	}
}

func TestCachedCheckCancelledDuringTheRunIsNotKept(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var runs atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCachedCheck(time.Minute, func() time.Time { return now }, func(cctx context.Context) error {
		if runs.Add(1) == 1 {
			cancel() // the first caller gives up while its check runs
			<-cctx.Done()
			return cctx.Err()
		}
		return nil
	})
	if err := c.Check(ctx); err == nil {
		t.Fatal("Check whose caller gave up = nil, want its error")
	}
	if err := c.Check(context.Background()); err != nil || runs.Load() != 2 {
		t.Errorf("next Check = %v after %d runs, want a fresh nil after 2", err, runs.Load())
	}
}

func TestCachedCheckRunsOneCheckAtATime(t *testing.T) {
	var running, most, runs atomic.Int32
	release := make(chan struct{})
	c := NewCachedCheck(time.Minute, time.Now, func(context.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		runs.Add(1)
		<-release
		return nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = c.Check(context.Background()) })
	}
	close(release)
	wg.Wait()
	if most.Load() != 1 || runs.Load() != 1 {
		t.Errorf("8 concurrent callers: %d checks at once, %d runs; want 1 and 1", most.Load(), runs.Load())
	}
}

func TestCachedCheckCallerGivesUpWaitingForItsTurn(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	c := NewCachedCheck(time.Minute, time.Now, func(context.Context) error {
		close(entered)
		<-release
		return nil
	})
	done := make(chan error)
	go func() { done <- c.Check(context.Background()) }()
	<-entered // the first caller holds the turn
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Check while another runs, its caller gone: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first Check = %v, want nil", err)
	}
}
