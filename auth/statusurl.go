package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orderflow/orderflow"
)

// Query parameters of a signed status URL.
const (
	ParamExpires   = "exp" // expiry, Unix seconds
	ParamKeyID     = "kid" // id of the signing key
	ParamSignature = "sig" // base64url (unpadded) HMAC-SHA256
)

const (
	// urlMACContext separates status-URL MACs from any other use of the key.
	urlMACContext = "orderflow status url v1\n"
	sigLen        = sha256.Size
	sigTextLen    = (sigLen*8 + 5) / 6 // unpadded base64 length: 43
	maxExpDigits  = 18
)

var sigEncoding = base64.RawURLEncoding.Strict()

// URLSigner signs and verifies status URLs: an HMAC-SHA256 over the order
// id, the expiry (Unix seconds) and the key id. It is safe for concurrent
// use, SetKeys included.
type URLSigner struct {
	keys atomic.Pointer[urlKeys]
}

// urlKeys is a keyring ready to sign and verify.
type urlKeys struct {
	active *urlKey
	byID   map[string]*urlKey
}

// urlKey keeps a pool of HMAC states (with scratch space) for one key, so
// signing and verifying do not allocate.
type urlKey struct {
	id   string
	pool sync.Pool // of *macState
}

type macState struct {
	h       hash.Hash
	buf     [128]byte
	sum     [sigLen]byte
	sig     [sigLen + 3]byte
	sigText [sigTextLen]byte
}

// NewURLSigner returns a signer that signs with the active key of keys and
// verifies with all of them. keys must not be nil.
func NewURLSigner(keys *Keyring) *URLSigner {
	s := &URLSigner{}
	s.SetKeys(keys)
	return s
}

// SetKeys replaces the keyring (a rotation read from a secret file): URLs
// signed from now on carry its active key's id, and only its keys verify.
// keys must not be nil.
func (s *URLSigner) SetKeys(keys *Keyring) {
	if keys == nil {
		panic("auth: URLSigner needs a keyring")
	}
	k := &urlKeys{byID: make(map[string]*urlKey, len(keys.keys))}
	for _, key := range keys.keys {
		secret := key.Secret
		uk := &urlKey{id: key.ID}
		uk.pool.New = func() any { return &macState{h: hmac.New(sha256.New, secret)} }
		k.byID[key.ID] = uk
	}
	k.active = k.byID[keys.active().ID]
	s.keys.Store(k)
}

// mac computes the MAC of (id, exp, key id) into m.sum.
func (k *urlKey) mac(m *macState, id string, exp int64) []byte {
	b := append(m.buf[:0], urlMACContext...)
	b = append(b, id...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, '\n')
	b = append(b, k.id...)
	m.h.Reset()
	m.h.Write(b)
	return m.h.Sum(m.sum[:0])
}

// Sign returns the query parameters exp, kid and sig that make a status URL
// for order id valid until expires (truncated to the second).
func (s *URLSigner) Sign(id orderflow.OrderID, expires time.Time) url.Values {
	exp := expires.Unix()
	active := s.keys.Load().active
	m := active.pool.Get().(*macState)
	sig := sigEncoding.EncodeToString(active.mac(m, string(id), exp))
	active.pool.Put(m)
	return url.Values{
		ParamExpires:   {strconv.FormatInt(exp, 10)},
		ParamKeyID:     {active.id},
		ParamSignature: {sig},
	}
}

// Verify checks the signed query q of the status URL of order id at time
// now and returns the order id. Every failure wraps ErrBadSignature: a
// missing or repeated exp, kid or sig, a malformed id or expiry, an unknown
// key id or a wrong signature; a correctly signed URL whose expiry is not
// after now wraps ErrURLExpired. The error message is safe for clients.
// Other query parameters are ignored.
func (s *URLSigner) Verify(id string, q url.Values, now time.Time) (orderflow.OrderID, error) {
	expText, kid, sigText := single(q[ParamExpires]), single(q[ParamKeyID]), single(q[ParamSignature])
	if expText == "" || kid == "" || sigText == "" {
		return "", reject(ErrBadSignature, "status URL needs exactly one exp, kid and sig", nil)
	}
	oid := orderflow.OrderID(id)
	if !oid.Valid() {
		return "", reject(ErrBadSignature, "status URL order id malformed", nil)
	}
	exp, ok := parseExpiry(expText)
	if !ok {
		return "", reject(ErrBadSignature, "status URL expiry malformed", nil)
	}
	key, ok := s.keys.Load().byID[kid]
	if !ok {
		return "", reject(ErrBadSignature, "status URL key id unknown", nil)
	}
	m := key.pool.Get().(*macState)
	defer key.pool.Put(m)
	if len(sigText) != sigTextLen {
		return "", reject(ErrBadSignature, "status URL signature invalid", nil)
	}
	copy(m.sigText[:], sigText) // decode from scratch space: no allocation
	n, err := sigEncoding.Decode(m.sig[:], m.sigText[:])
	if err != nil || n != sigLen {
		return "", reject(ErrBadSignature, "status URL signature invalid", nil)
	}
	if !hmac.Equal(key.mac(m, id, exp), m.sig[:sigLen]) {
		return "", reject(ErrBadSignature, "status URL signature invalid", nil)
	}
	if now.Unix() >= exp {
		return "", reject(ErrURLExpired, "status URL expired", nil)
	}
	return oid, nil
}

// single returns the only value of vs, or "" if there is not exactly one.
func single(vs []string) string {
	if len(vs) != 1 {
		return ""
	}
	return vs[0]
}

// parseExpiry accepts only the canonical decimal form Sign writes (digits,
// no sign, no leading zero), so each URL has exactly one valid spelling.
func parseExpiry(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxExpDigits || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
