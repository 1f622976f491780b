package httpapi

import (
	"testing"
	"time"
)

func TestTokenCacheNeverOutlivesTheToken(t *testing.T) {
	c := newTokenCache()
	now := time.Unix(1_750_000_000, 0)
	c.put("soon", "ada", now, now.Add(2*time.Second))
	c.put("later", "bob", now, now.Add(time.Hour))
	if u, ok := c.get("soon", now.Add(time.Second)); !ok || u != "ada" {
		t.Fatalf("got %q %v before expiry, want ada", u, ok)
	}
	if _, ok := c.get("soon", now.Add(2*time.Second)); ok {
		t.Fatal("a cached token is accepted at its expiry")
	}
	if _, ok := c.get("later", now.Add(tokenCacheTTL)); ok {
		t.Fatal("a cached token is accepted after the cache TTL without being verified again")
	}
}
