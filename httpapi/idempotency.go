package httpapi

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/orderflow/orderflow"
)

// idempotencyKey returns the request's Idempotency-Key ("" if none). The
// key is 1-255 printable ASCII characters; the quoted form of the IETF
// draft ("abc", a structured-field string) is accepted as abc.
func idempotencyKey(h http.Header) (string, error) {
	vs := h["Idempotency-Key"]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", newClientError(codeBadRequest, "", "send at most one Idempotency-Key header")
	}
	k := vs[0]
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if len(k) == 0 || len(k) > orderflow.MaxIdempotencyKey {
		return "", newClientError(codeBadRequest, "", "Idempotency-Key must be 1-"+strconv.Itoa(orderflow.MaxIdempotencyKey)+" printable ASCII characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", newClientError(codeBadRequest, "", "Idempotency-Key must be 1-"+strconv.Itoa(orderflow.MaxIdempotencyKey)+" printable ASCII characters")
		}
	}
	return k, nil
}

// requestHash fingerprints what an order asks for: the user and the
// decoded body in canonical form (currency defaulted, items sorted by
// SKU), so that spelling differences of the same order do not count as a
// different request.
func requestHash(o orderflow.Order) string {
	items := slices.Clone(o.Items)
	slices.SortFunc(items, func(a, b orderflow.Item) int { return cmp.Compare(a.SKU, b.SKU) })
	b := make([]byte, 0, 64+len(items)*24)
	b = append(b, "order v1\x00"...)
	b = append(b, o.UserID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, o.Amount, 10)
	b = append(b, 0)
	b = append(b, o.Currency...)
	for _, it := range items {
		b = append(b, 0)
		b = append(b, it.SKU...)
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(it.Quantity), 10)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// inflight is the set of (user, idempotency key) pairs whose first request
// is being handled in this process; a second one gets 409 at once.
type inflight struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func newInflight() *inflight { return &inflight{m: make(map[string]struct{})} }

// begin claims (user, key); ok is false if it is already claimed. The
// caller calls end when done.
func (f *inflight) begin(user, key string) (end func(), ok bool) {
	k := user + "\x00" + key
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, busy := f.m[k]; busy {
		return nil, false
	}
	f.m[k] = struct{}{}
	return func() {
		f.mu.Lock()
		delete(f.m, k)
		f.mu.Unlock()
	}, true
}
