package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow"
)

// Token parameters.
const (
	// Issuer is the "iss" of every token; Verify requires it.
	Issuer = "orderflow"
	// DefaultTokenTTL is the lifetime NewTokens uses when given less than a second.
	DefaultTokenTTL = time.Hour
	// Leeway is the clock skew tolerated on "exp" and "iat".
	Leeway = 30 * time.Second
	// MaxTokenBytes is the longest token Verify will parse.
	MaxTokenBytes = 4096
	// signingAlg is the only algorithm issued and accepted.
	signingAlg = "HS256"
)

// errUnknownKID is returned by the key function; Verify maps it to a reason.
var errUnknownKID = errors.New("unknown key id")

// Tokens issues and verifies HS256 JWTs. The "kid" header names the key that
// signed a token; claims are sub (the user id), iat, exp, iss and jti. A
// Tokens is safe for concurrent use, SetKeys included.
type Tokens struct {
	keys   atomic.Pointer[tokenKeys]
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
	// keyFunc is t.key bound once, so Verify does not allocate a method value.
	keyFunc jwt.Keyfunc
}

// tokenKeys is a keyring with each key's secret already boxed as the
// []byte the HMAC method expects, so the key function does not allocate.
type tokenKeys struct {
	ring    *Keyring
	secrets map[string]any
}

func newTokenKeys(kr *Keyring) *tokenKeys {
	if kr == nil {
		panic("auth: Tokens need a keyring")
	}
	k := &tokenKeys{ring: kr, secrets: make(map[string]any, len(kr.keys))}
	for _, key := range kr.keys {
		k.secrets[key.ID] = key.Secret
	}
	return k
}

// SetKeys replaces the keyring (a rotation read from a secret file): tokens
// issued from now on are signed with its active key, and only its keys
// verify. keys must not be nil.
func (t *Tokens) SetKeys(keys *Keyring) { t.keys.Store(newTokenKeys(keys)) }

// NewTokens returns a Tokens signing with the active key of keys and
// verifying with all of them. Tokens live for ttl, whole seconds
// (DefaultTokenTTL if ttl is under a second). now is the clock (time.Now if
// nil). keys must not be nil.
func NewTokens(keys *Keyring, ttl time.Duration, now func() time.Time) *Tokens {
	if ttl < time.Second {
		ttl = DefaultTokenTTL
	}
	if now == nil {
		now = time.Now
	}
	t := &Tokens{
		ttl: ttl.Truncate(time.Second),
		now: now,
	}
	t.SetKeys(keys)
	t.keyFunc = t.key
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{signingAlg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	return t
}

// Issue returns a token for userID, signed with the active key, and how long
// it is valid. userID must satisfy orderflow.ValidUserID (else an EInvalid
// *orderflow.Error).
func (t *Tokens) Issue(userID string) (token string, expiresIn time.Duration, err error) {
	if !orderflow.ValidUserID(userID) {
		return "", 0, orderflow.Errorf(orderflow.EInvalid, "user_id must be 1-%d letters, digits or ._@+-", orderflow.MaxUserIDLength)
	}
	now := t.now().Truncate(time.Second)
	key := t.keys.Load().ring.active()
	claims := jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		ID:        newTokenID(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = key.ID
	s, err := tok.SignedString(key.Secret)
	if err != nil {
		return "", 0, fmt.Errorf("sign token: %w", err)
	}
	return s, t.ttl, nil
}

// Verify checks token and returns its subject. Every failure wraps
// ErrInvalidToken (an expired token ErrExpiredToken) and its message is a
// short reason safe to show the client, such as "token expired", "token
// signature invalid", "token algorithm not allowed", "unknown key id" or
// "malformed token". Only HS256 is accepted, exp, iat and iss="orderflow"
// are required (exp, iat and nbf as JSON numbers, RFC 7519's NumericDate),
// exp and iat are checked with Leeway, tokens longer than
// MaxTokenBytes are rejected unparsed, and sub must be a valid user id.
func (t *Tokens) Verify(token string) (userID string, err error) {
	userID, _, err = t.VerifyExpiry(token)
	return userID, err
}

// VerifyExpiry is Verify that also returns when the token expires, so that
// a caller caching verified tokens never keeps one past its expiry.
func (t *Tokens) VerifyExpiry(token string) (userID string, expires time.Time, err error) {
	if len(token) > MaxTokenBytes {
		return "", time.Time{}, reject(ErrInvalidToken, "token too long", nil)
	}
	var claims claims
	tok, err := t.parser.ParseWithClaims(token, &claims, t.keyFunc)
	if err != nil {
		return "", time.Time{}, classify(tok, err)
	}
	if claims.IssuedAt == nil {
		return "", time.Time{}, reject(ErrInvalidToken, "token missing required claim", nil)
	}
	if !orderflow.ValidUserID(claims.Subject) {
		return "", time.Time{}, reject(ErrInvalidToken, "token subject invalid", nil)
	}
	return claims.Subject, claims.ExpiresAt.NumericDate.Time, nil
}

// key is the jwt.Keyfunc: the "kid" header picks the secret.
func (t *Tokens) key(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	secret, ok := t.keys.Load().secrets[kid]
	if !ok {
		return nil, errUnknownKID
	}
	return secret, nil
}

// classify turns a parser error into a rejection with a client-safe reason.
// The order matters: a malformed token has no trustworthy header, and a
// foreign algorithm or key is reported before anything about its claims.
func classify(tok *jwt.Token, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return reject(ErrInvalidToken, "malformed token", err)
	case tok != nil && tok.Header["alg"] != signingAlg:
		return reject(ErrInvalidToken, "token algorithm not allowed", err)
	case errors.Is(err, errUnknownKID):
		return reject(ErrInvalidToken, "unknown key id", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return reject(ErrInvalidToken, "token signature invalid", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return reject(ErrExpiredToken, "token expired", err)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return reject(ErrInvalidToken, "token not valid yet", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return reject(ErrInvalidToken, "token issuer invalid", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return reject(ErrInvalidToken, "token missing required claim", err)
	}
	return reject(ErrInvalidToken, "malformed token", err)
}

// newTokenID returns a random jti of 128 bits.
func newTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
