package orderflow

import (
	"context"
	"sync"
	"time"
)

// Rate is an allowance of Limit units per Window, spent one unit per
// request and refilled evenly, one unit every Window/Limit: GCRA, a token
// bucket of Limit tokens written as one number per key, its theoretical
// arrival time (tat): the time at which the bucket would be full again.
// The maths is here and only here; a store keeps the tat of each key.
type Rate struct {
	Limit  int
	Window time.Duration
}

// Interval is the time one unit takes to come back (at least 1 ns).
func (r Rate) Interval() int64 { return max(1, int64(r.Window)/int64(max(r.Limit, 1))) }

// Ceiling is the largest stored tat at which a take at now is still
// allowed (Unix ns): a take moves the tat one Interval past max(tat, now),
// and it must stay within one Window of now.
func (r Rate) Ceiling(now int64) int64 { return now + int64(r.Window) - r.Interval() }

// Take is one step of GCRA for a key whose stored tat is tat (Unix ns; 0,
// or anything at or before now, for a key never seen or idle): it returns
// the tat to store (tat itself when denied) and the decision.
func (r Rate) Take(tat int64, now time.Time) (int64, RateDecision) {
	t := now.UnixNano()
	if tat > r.Ceiling(t) {
		return tat, r.Denied(tat, t)
	}
	next := max(tat, t) + r.Interval()
	return next, r.Allowed(next, t)
}

// Allowed is the decision of a take that moved the key's tat to next at
// now (Unix ns).
func (r Rate) Allowed(next, now int64) RateDecision {
	return RateDecision{
		Allowed:   true,
		Remaining: int(max(0, int64(r.Window)-(next-now)) / r.Interval()),
		Reset:     time.Duration(max(0, next-now)),
	}
}

// Denied is the decision of a take refused at now (Unix ns) because the
// key's tat is above Ceiling(now).
func (r Rate) Denied(tat, now int64) RateDecision {
	return RateDecision{
		Reset:      time.Duration(tat - now),
		RetryAfter: time.Duration(tat - r.Ceiling(now)),
	}
}

// RateDecision is the outcome of taking one unit of an allowance.
type RateDecision struct {
	Allowed    bool
	Remaining  int           // units left after this take
	Reset      time.Duration // until the whole allowance is back
	RetryAfter time.Duration // until the next take is allowed (when denied)
}

// MaxRateKey is the longest key a RateLimiter takes, in bytes.
const MaxRateKey = 512

// ValidateRateKey returns an EInvalid error unless key is a RateLimiter
// key: 1 to MaxRateKey bytes.
func ValidateRateKey(key string) error {
	if key == "" || len(key) > MaxRateKey {
		return Errorf(EInvalid, "rate limit key must be 1-%d bytes, got %d", MaxRateKey, len(key))
	}
	return nil
}

// RateLimiter holds the rate-limit state of keys (a user's orders, a
// client's logins) where every process that limits the same keys sees it:
// the api processes sharing a SQLite file, or a DynamoDB table. Take spends
// one unit of key's allowance under rate at now and returns the decision
// of rate.Take on the key's stored tat; the read and the update are one
// atomic step with respect to every other Take of the key in any process,
// so that N processes together allow rate.Limit per rate.Window, not N
// times as many. Keys are chosen by the caller (see ValidateRateKey; an
// invalid one is EInvalid); callers give one key the same rate every time.
// Take returns EUnavailable when the store cannot be reached; what the caller does then (httpapi falls back to
// a per-process limit) is its policy. Implementations are safe for
// concurrent use.
type RateLimiter interface {
	Take(ctx context.Context, key string, rate Rate, now time.Time) (RateDecision, error)
}

// MemoryRateLimiter is a RateLimiter whose state lives in this process
// only: the default when there is one api process, and httpapi's fallback
// while the shared store cannot be reached. Memory stays bounded: a key
// whose tat has passed is the same as an unknown key, and such keys are
// swept out at most once a minute. Safe for concurrent use.
type MemoryRateLimiter struct {
	mu        sync.Mutex
	tat       map[string]int64 // Unix ns
	lastSweep int64
}

var _ RateLimiter = (*MemoryRateLimiter)(nil)

// NewMemoryRateLimiter returns an empty MemoryRateLimiter.
func NewMemoryRateLimiter() *MemoryRateLimiter {
	return &MemoryRateLimiter{tat: make(map[string]int64)}
}

// Take spends one unit of key's allowance; its only error is an invalid
// key's.
func (l *MemoryRateLimiter) Take(_ context.Context, key string, rate Rate, now time.Time) (RateDecision, error) {
	if err := ValidateRateKey(key); err != nil {
		return RateDecision{}, err
	}
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t-l.lastSweep > int64(time.Minute) {
		for k, tat := range l.tat {
			if tat <= t {
				delete(l.tat, k)
			}
		}
		l.lastSweep = t
	}
	next, d := rate.Take(l.tat[key], now)
	if d.Allowed {
		l.tat[key] = next
	}
	return d, nil
}

// Len returns the number of keys held.
func (l *MemoryRateLimiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}
