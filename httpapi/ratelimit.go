package httpapi

import (
	"strconv"
	"sync"
	"time"
)

// limiter is a GCRA rate limiter (a token bucket of size limit refilled
// over window) keyed by user or client IP. Memory stays bounded: a key
// whose bucket is full again is equivalent to an unknown key, and such
// keys are swept out at most once per window. Safe for concurrent use.
type limiter struct {
	limit    int
	window   int64 // ns
	interval int64 // ns between refills: window/limit

	mu        sync.Mutex
	tat       map[string]int64 // theoretical arrival time, Unix ns
	lastSweep int64
}

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{
		limit:    limit,
		window:   int64(window),
		interval: int64(window) / int64(limit),
		tat:      make(map[string]int64),
	}
}

// decision is the outcome of one take.
type decision struct {
	allowed    bool
	remaining  int           // requests left right now
	reset      time.Duration // until the full quota is back
	retryAfter time.Duration // until the next request is allowed (when denied)
}

// take spends one request of key at now.
func (l *limiter) take(key string, now time.Time) decision {
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t-l.lastSweep > l.window {
		for k, tat := range l.tat {
			if tat <= t {
				delete(l.tat, k)
			}
		}
		l.lastSweep = t
	}
	tat, ok := l.tat[key]
	if !ok || tat < t {
		tat = t
	}
	next := tat + l.interval
	if next-t > l.window {
		return decision{reset: time.Duration(tat - t), retryAfter: time.Duration(next - l.window - t)}
	}
	l.tat[key] = next
	return decision{
		allowed:   true,
		remaining: int((l.window - (next - t)) / l.interval),
		reset:     time.Duration(next - t),
	}
}

// size returns the number of keys held (for tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

// header renders d as a RateLimit field value
// (draft-ietf-httpapi-ratelimit-headers): "default";r=<remaining>;t=<secs>.
func (d decision) header() string {
	b := make([]byte, 0, 40)
	b = append(b, `"default";r=`...)
	b = strconv.AppendInt(b, int64(d.remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(d.reset), 10)
	return string(b)
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
