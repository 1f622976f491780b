package orderflow

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// MaxRequestIDLength bounds a request id taken from a client.
const MaxRequestIDLength = 128

// ValidRequestID reports whether id, sent by a client (X-Request-ID), may
// be used as the request's id: it matches ^[A-Za-z0-9._:-]{1,128}$, which
// keeps it safe in headers, logs and queue messages. Every HTTP port of
// orderflow takes a client's id by this rule and replaces any other.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > MaxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// RequestIDs generates request ids that are unique across processes: a
// random prefix per generator and a counter (cheaper than reading
// randomness per request). The ids satisfy ValidRequestID. A RequestIDs is
// safe for concurrent use; the zero value is not usable.
type RequestIDs struct {
	prefix string
	n      atomic.Uint64
}

// NewRequestIDs returns a generator with a fresh random prefix.
func NewRequestIDs() *RequestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &RequestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

// Next returns a new id.
func (g *RequestIDs) Next() string {
	var b [48]byte
	out := append(b[:0], g.prefix...)
	out = strconv.AppendUint(out, g.n.Add(1), 10)
	return string(out)
}

// Take returns the client's id if ValidRequestID accepts it, else a new one.
func (g *RequestIDs) Take(clientID string) string {
	if ValidRequestID(clientID) {
		return clientID
	}
	return g.Next()
}
