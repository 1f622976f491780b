package httpapi

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
)

// storeRetryAfter is how long a limiter that found its store unreachable
// decides alone before it asks the store again: during an outage of
// DynamoDB every call waits up to its timeout, and the order's own write
// after it waits too.
const storeRetryAfter = time.Second

// limiter applies one rate limit (orders per user, logins per client)
// through the RateLimiter shared by every api process (Deps.RateLimiter).
// When that store cannot be reached it fails open, to a limit of its own:
// rate.Limit/Config.RateLimitProcesses (at least 1) per process, kept in
// memory, so that N processes together still allow about rate.Limit;
// each such decision is counted in rate_limit_fallbacks_total and logged
// (at most once per RepeatedLogInterval). After a failure it decides alone
// for storeRetryAfter before it tries the store again. The answers' headers
// always describe the limit that decided: the shared one, or this
// process's while it falls back. Safe for concurrent use.
type limiter struct {
	name     string // "orders" or "login": the key prefix, the metric label
	rate     orderflow.Rate
	fallback orderflow.Rate
	store    orderflow.RateLimiter
	local    *orderflow.MemoryRateLimiter // the fallback's state
	// Policies: RateLimit-Policy values of rate and fallback.
	policy, fallbackPolicy []string
	downUntil              atomic.Int64 // Unix ns; decide alone until then
	s                      *server
}

// newLimiter returns the limiter of limit per window called name,
// through store, or through a memory of its own if store is nil.
func (s *server) newLimiter(name string, limit int, store orderflow.RateLimiter) *limiter {
	l := &limiter{
		name:     name,
		rate:     orderflow.Rate{Limit: limit, Window: time.Minute},
		fallback: orderflow.Rate{Limit: max(1, limit/s.cfg.RateLimitProcesses), Window: time.Minute},
		store:    store,
		local:    orderflow.NewMemoryRateLimiter(),
		s:        s,
	}
	if l.store == nil {
		l.store, l.fallback = l.local, l.rate
	}
	l.policy = []string{policyHeader(l.rate)}
	l.fallbackPolicy = []string{policyHeader(l.fallback)}
	return l
}

// take spends one unit of key's allowance at now and returns the decision
// and the limit that made it, with its RateLimit-Policy.
func (l *limiter) take(ctx context.Context, key string, now time.Time) (orderflow.RateDecision, orderflow.Rate, []string) {
	if now.UnixNano() >= l.downUntil.Load() {
		d, err := l.store.Take(ctx, l.name+":"+key, l.rate, now)
		switch {
		case err == nil:
			return d, l.rate, l.policy
		case ctx.Err() != nil:
			// The client went away or the request ran out of time: that
			// says nothing about the store.
		default:
			l.downUntil.Store(now.Add(storeRetryAfter).UnixNano())
			l.s.logs.Log(ctx, slog.LevelWarn, "rate limiter "+l.name,
				"rate limiter store unreachable; limiting per process", "limit", l.name,
				"per_process", l.fallback.Limit, "code", orderflow.ErrorCode(err), "err", err)
		}
	}
	l.s.metrics.limitFallbacks.WithLabelValues(l.name).Inc()
	d, _ := l.local.Take(ctx, key, l.fallback, now)
	return d, l.fallback, l.fallbackPolicy
}

// policyHeader renders r as a RateLimit-Policy field value
// (draft-ietf-httpapi-ratelimit-headers): "default";q=<limit>;w=<secs>.
func policyHeader(r orderflow.Rate) string {
	return `"default";q=` + strconv.Itoa(r.Limit) + `;w=` + strconv.FormatInt(ceilSeconds(r.Window), 10)
}

// rateLimitHeader renders d as a RateLimit field value
// (draft-ietf-httpapi-ratelimit-headers): "default";r=<remaining>;t=<secs>.
func rateLimitHeader(d orderflow.RateDecision) string {
	b := make([]byte, 0, 40)
	b = append(b, `"default";r=`...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
	return string(b)
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
