package httpapi

import (
	"sync"
	"time"
)

// Verified tokens are remembered briefly: verifying a JWT (base64, JSON,
// HMAC) is the most expensive step of an authenticated request, and a
// client sends the same token many times. BenchmarkCreateOrder, four
// alternated rounds of the whole handler with and without the cache:
// 36–40 against 48–58 µs of CPU per request, 66 against 118 allocations.
// An entry never outlives its token's expiry, so a cached token is accepted
// exactly as long as a verified one would be (give or take auth's leeway);
// only successful verifications are remembered.
const (
	tokenCacheTTL  = 10 * time.Second
	tokenCacheSize = 10_000 // entries; the cache is emptied when full
)

// tokenCache maps a verified token to its subject until a deadline. Safe
// for concurrent use.
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	user  string
	until int64 // Unix ns
}

func newTokenCache() *tokenCache { return &tokenCache{m: make(map[string]cachedToken)} }

// get returns the subject of tok if it was verified less than
// tokenCacheTTL before now.
func (c *tokenCache) get(tok string, now time.Time) (string, bool) {
	c.mu.RLock()
	e, ok := c.m[tok]
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.until {
		return "", false
	}
	return e.user, true
}

// put remembers that tok was verified at now, belongs to user and expires
// at expires.
func (c *tokenCache) put(tok, user string, now, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= tokenCacheSize {
		clear(c.m)
	}
	until := now.Add(tokenCacheTTL)
	if expires.Before(until) {
		until = expires
	}
	c.m[tok] = cachedToken{user: user, until: until.UnixNano()}
}
