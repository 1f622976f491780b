package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

// TestRateLimiter runs the contract of orderflow.RateLimiter against the
// limiters newLimiters makes: two limiters on one shared state, as two api
// processes see it (two DBs on one SQLite file, two clients of one
// DynamoDB table). Subtests use fresh keys, so the state may be shared
// between them too.
func TestRateLimiter(t *testing.T, newLimiters func(t *testing.T) (a, b orderflow.RateLimiter)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, a, b orderflow.RateLimiter)
	}{
		{"takes count down the allowance, then are denied with the time to wait", rateCountsDown},
		{"time gives the allowance back, one unit per interval", rateRefills},
		{"each key has its own allowance", rateKeysApart},
		{"two limiters on one store share one allowance", rateShared},
		{"concurrent takes through both limiters allow exactly the limit", rateConcurrent},
		{"a key must be 1-512 bytes", rateBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := newLimiters(t)
			tt.run(t, a, b)
		})
	}
}

// rateNow is the suites' clock for rate limits: the present, so that a
// store that expires idle keys by its own clock keeps these.
func rateNow() time.Time { return time.Now().Truncate(time.Millisecond) }

func take(t *testing.T, l orderflow.RateLimiter, key string, r orderflow.Rate, now time.Time) orderflow.RateDecision {
	t.Helper()
	d, err := l.Take(testCtx(t), key, r, now)
	if err != nil {
		t.Fatalf("Take(%s): %v", key, err)
	}
	return d
}

func wantDecision(t *testing.T, what string, got, want orderflow.RateDecision) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

func rateCountsDown(t *testing.T, a, _ orderflow.RateLimiter) {
	r := orderflow.Rate{Limit: 3, Window: time.Minute}
	key, now := unique("user"), rateNow()
	for i := range 3 {
		wantDecision(t, fmt.Sprintf("take %d", i+1), take(t, a, key, r, now),
			orderflow.RateDecision{Allowed: true, Remaining: 2 - i, Reset: time.Duration(i+1) * 20 * time.Second})
	}
	wantDecision(t, "take 4", take(t, a, key, r, now), orderflow.RateDecision{Reset: time.Minute, RetryAfter: 20 * time.Second})
	// A denied take spends nothing.
	wantDecision(t, "take 5", take(t, a, key, r, now.Add(5*time.Second)), orderflow.RateDecision{Reset: 55 * time.Second, RetryAfter: 15 * time.Second})
}

func rateRefills(t *testing.T, a, _ orderflow.RateLimiter) {
	r := orderflow.Rate{Limit: 3, Window: time.Minute}
	key, now := unique("user"), rateNow()
	for range 3 {
		take(t, a, key, r, now)
	}
	wantDecision(t, "one interval later", take(t, a, key, r, now.Add(20*time.Second)),
		orderflow.RateDecision{Allowed: true, Remaining: 0, Reset: time.Minute})
	// A key idle for longer than the window is as good as new.
	wantDecision(t, "after idling", take(t, a, key, r, now.Add(5*time.Minute)),
		orderflow.RateDecision{Allowed: true, Remaining: 2, Reset: 20 * time.Second})
}

func rateKeysApart(t *testing.T, a, _ orderflow.RateLimiter) {
	r := orderflow.Rate{Limit: 1, Window: time.Minute}
	alice, bob, now := unique("alice"), unique("bob"), rateNow()
	if d := take(t, a, alice, r, now); !d.Allowed {
		t.Fatalf("alice's first take: %+v, want allowed", d)
	}
	if d := take(t, a, alice, r, now); d.Allowed {
		t.Fatalf("alice's second take: %+v, want denied", d)
	}
	if d := take(t, a, bob, r, now); !d.Allowed {
		t.Errorf("bob's first take after alice's: %+v, want allowed", d)
	}
}

func rateShared(t *testing.T, a, b orderflow.RateLimiter) {
	r := orderflow.Rate{Limit: 4, Window: time.Minute}
	key, now := unique("user"), rateNow()
	for i, l := range []orderflow.RateLimiter{a, b, a, b} {
		wantDecision(t, fmt.Sprintf("take %d", i+1), take(t, l, key, r, now),
			orderflow.RateDecision{Allowed: true, Remaining: 3 - i, Reset: time.Duration(i+1) * 15 * time.Second})
	}
	wantDecision(t, "take 5 through the first", take(t, a, key, r, now), orderflow.RateDecision{Reset: time.Minute, RetryAfter: 15 * time.Second})
	wantDecision(t, "take 5 through the second", take(t, b, key, r, now), orderflow.RateDecision{Reset: time.Minute, RetryAfter: 15 * time.Second})
}

func rateConcurrent(t *testing.T, a, b orderflow.RateLimiter) {
	const limit, takers = 10, 32
	r := orderflow.Rate{Limit: limit, Window: time.Minute}
	key, now := unique("user"), rateNow()
	got := make([]orderflow.RateDecision, takers)
	errs := make([]error, takers)
	var wg sync.WaitGroup
	for i := range takers {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() { got[i], errs[i] = l.Take(testCtx(t), key, r, now) })
	}
	wg.Wait()
	var remaining []int
	for i, d := range got {
		if errs[i] != nil {
			t.Fatalf("concurrent Take: %v", errs[i])
		}
		if d.Allowed {
			remaining = append(remaining, d.Remaining)
		}
	}
	slices.Sort(remaining)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(remaining, want) {
		t.Errorf("%d concurrent takes allowed %d with remaining %v; want %d allowed, with each of %v once", takers, len(remaining), remaining, limit, want)
	}
}

func rateBadKey(t *testing.T, a, _ orderflow.RateLimiter) {
	r := orderflow.Rate{Limit: 1, Window: time.Minute}
	_, err := a.Take(testCtx(t), "", r, rateNow())
	wantCode(t, "Take with an empty key", err, orderflow.EInvalid)
	_, err = a.Take(testCtx(t), strings.Repeat("k", 513), r, rateNow())
	wantCode(t, "Take with a key of 513 bytes", err, orderflow.EInvalid)
	long := unique("k")
	long += strings.Repeat("k", 512-len(long))
	if d := take(t, a, long, r, rateNow()); !d.Allowed {
		t.Errorf("Take with a key of 512 bytes: %+v, want allowed", d)
	}
}
