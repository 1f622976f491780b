package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// Two api servers on one limiter store allow the limit once between them,
// and every answer's headers come from the shared state: the remaining
// count goes down across both.
func TestRateLimitHoldsAcrossServersSharingTheStore(t *testing.T) {
	shared := orderflow.NewMemoryRateLimiter()
	share := func(c *Config, d *Deps) { c.RateLimit = 4; d.RateLimiter = shared }
	servers := []*fixture{newFixture(t, share), newFixture(t, share)}
	for i := range 4 {
		f := servers[i%2]
		rr := f.postOrder("u123", `{"amount":1}`)
		if rr.Code != 202 {
			t.Fatalf("order %d on server %d: status %d, want 202", i+1, i%2+1, rr.Code)
		}
		if got, want := rr.Header().Get("RateLimit"), fmt.Sprintf(`"default";r=%d;t=%d`, 3-i, 15*(i+1)); got != want {
			t.Errorf("order %d on server %d: RateLimit = %q, want %q", i+1, i%2+1, got, want)
		}
		if got, want := rr.Header().Get("RateLimit-Policy"), `"default";q=4;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
	}
	for i, f := range servers {
		rr := f.postOrder("u123", `{"amount":1}`)
		if rr.Code != 429 || rr.Header().Get("Retry-After") != "15" || rr.Header().Get("RateLimit") != `"default";r=0;t=60` {
			t.Errorf("5th order on server %d: status %d Retry-After %q RateLimit %q; want 429, 15, r=0;t=60",
				i+1, rr.Code, rr.Header().Get("Retry-After"), rr.Header().Get("RateLimit"))
		}
	}
	if n := servers[0].store.count() + servers[1].store.count(); n != 4 {
		t.Errorf("the servers accepted %d orders in total, want 4", n)
	}
}

// downLimiter is a limiter store that can be taken down: while down, every
// Take fails with EUnavailable.
type downLimiter struct {
	down  atomic.Bool
	calls atomic.Int64
	mem   *orderflow.MemoryRateLimiter
}

func (l *downLimiter) Take(ctx context.Context, key string, r orderflow.Rate, now time.Time) (orderflow.RateDecision, error) {
	l.calls.Add(1)
	if l.down.Load() {
		return orderflow.RateDecision{}, orderflow.Errorf(orderflow.EUnavailable, "limiter store down")
	}
	return l.mem.Take(ctx, key, r, now)
}

// While the limiter's store cannot be reached, each process fails open to
// its share of the limit (limit/RateLimitProcesses), says so in its
// headers, counts and logs it, and asks the store again a moment later.
func TestRateLimitFallsBackToTheProcessShareWhileTheStoreIsDown(t *testing.T) {
	store := &downLimiter{mem: orderflow.NewMemoryRateLimiter()}
	store.down.Store(true)
	f := newFixture(t, func(c *Config, d *Deps) { c.RateLimit = 4; c.RateLimitProcesses = 2; d.RateLimiter = store })
	for i := range 2 {
		rr := f.postOrder("u123", `{"amount":1}`)
		if rr.Code != 202 {
			t.Fatalf("order %d with the store down: status %d, want 202", i+1, rr.Code)
		}
		if got, want := rr.Header().Get("RateLimit-Policy"), `"default";q=2;w=60`; got != want {
			t.Errorf("RateLimit-Policy while falling back = %q, want %q", got, want)
		}
		if got, want := rr.Header().Get("RateLimit"), fmt.Sprintf(`"default";r=%d;t=%d`, 1-i, 30*(i+1)); got != want {
			t.Errorf("order %d: RateLimit = %q, want %q", i+1, got, want)
		}
	}
	if rr := f.postOrder("u123", `{"amount":1}`); rr.Code != 429 || rr.Header().Get("Retry-After") != "30" {
		t.Errorf("3rd order with the store down: status %d Retry-After %q, want 429 and 30 (the share of 2)", rr.Code, rr.Header().Get("Retry-After"))
	} else if p := problemOf(t, rr); !strings.Contains(p.Detail, "rate limit of 2 orders") {
		t.Errorf("429 detail %q, want it to name the limit that applies (2)", p.Detail)
	}
	if n := store.calls.Load(); n != 1 {
		t.Errorf("the store was asked %d times within %s of its failure, want 1", n, storeRetryAfter)
	}
	if got := counterValue(t, f.reg, "rate_limit_fallbacks_total", map[string]string{"limit": "orders"}); got != 3 {
		t.Errorf("rate_limit_fallbacks_total{limit=orders} = %v, want 3", got)
	}
	if n := len(f.logs.Messages("rate limiter store unreachable; limiting per process")); n != 1 {
		t.Errorf("%d log lines about the unreachable store, want 1 (the rest held back)", n)
	}

	store.down.Store(false)
	f.clock.Advance(storeRetryAfter)
	rr := f.postOrder("u123", `{"amount":1}`)
	if rr.Code != 202 || rr.Header().Get("RateLimit-Policy") != `"default";q=4;w=60` || rr.Header().Get("RateLimit") != `"default";r=3;t=15` {
		t.Errorf("once the store is back: status %d policy %q RateLimit %q; want 202 from the shared limit (q=4, r=3;t=15)",
			rr.Code, rr.Header().Get("RateLimit-Policy"), rr.Header().Get("RateLimit"))
	}
}

// A request whose context ended (the client went away) says nothing about
// the store: the next request asks the store again.
func TestRateLimitCanceledRequestDoesNotSwitchToTheFallback(t *testing.T) {
	store := &downLimiter{mem: orderflow.NewMemoryRateLimiter()}
	f := newFixture(t, func(c *Config, d *Deps) { c.RateLimit = 4; d.RateLimiter = store })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	store.down.Store(true) // fails as a store would whose call was canceled
	f.s.orderLim.take(ctx, "u123", t0)
	store.down.Store(false)
	rr := f.postOrder("u123", `{"amount":1}`)
	if n := store.calls.Load(); n != 2 || rr.Header().Get("RateLimit-Policy") != `"default";q=4;w=60` {
		t.Errorf("after a canceled take: the store was asked %d times, policy %q; want 2 and the shared limit's", n, rr.Header().Get("RateLimit-Policy"))
	}
}

// Concurrent orders through two servers on one store: exactly the limit
// is accepted.
func TestRateLimitAcrossServersUnderConcurrency(t *testing.T) {
	shared := orderflow.NewMemoryRateLimiter()
	// NewID nil: the default ids, safe for concurrent use.
	share := func(c *Config, d *Deps) { c.RateLimit = 10; d.RateLimiter = shared; d.NewID = nil }
	servers := []*fixture{newFixture(t, share), newFixture(t, share)}
	tokens := []string{servers[0].token("u123"), servers[1].token("u123")}
	var wg sync.WaitGroup
	var accepted, limited atomic.Int64
	for i := range 40 {
		wg.Go(func() {
			req := request("POST", "/orders", `{"amount":1}`, "Content-Type", "application/json", "Authorization", "Bearer "+tokens[i%2])
			rr := httptestRecorder()
			servers[i%2].h.ServeHTTP(rr, req)
			switch rr.Code {
			case 202:
				accepted.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 10 || limited.Load() != 30 {
		t.Errorf("40 concurrent orders on two servers: %d accepted, %d limited; want 10 and 30", accepted.Load(), limited.Load())
	}
}
