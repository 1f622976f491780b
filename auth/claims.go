package auth

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// claims are the registered claims a token is verified with. They differ
// from jwt.RegisteredClaims in one way: exp, nbf and iat must be JSON
// numbers, as RFC 7519's NumericDate is. jwt.NumericDate also takes a
// string of digits ("exp":"1740834000"), which no issuer of ours writes.
type claims struct {
	jwt.RegisteredClaims
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
}

func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }

// numericDate is a jwt.NumericDate that only a JSON number unmarshals into.
type numericDate struct{ jwt.NumericDate }

var errNumericDate = errors.New("NumericDate must be a JSON number")

// UnmarshalJSON accepts a JSON number (a null never reaches it: the field
// stays nil, which is a missing claim).
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errNumericDate
	}
	return d.NumericDate.UnmarshalJSON(b)
}

// date is the jwt.NumericDate of d, or nil when the claim is absent.
func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}
