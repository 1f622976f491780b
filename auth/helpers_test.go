package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"testing"
	"time"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// Fixed test secrets, 32 bytes and more.
var (
	secretA = []byte("test-secret-A-0123456789abcdef-0123456789")
	secretB = []byte("test-secret-B-0123456789abcdef-0123456789")
	secretC = []byte("test-secret-C-0123456789abcdef-0123456789")
)

func mustKeyring(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	kr, err := NewKeyring(keys...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

// rawToken builds a JWT by hand so tests can forge any header and claims.
// alg selects the MAC ("HS256", "HS512"); any other alg gets sig as its
// signature bytes verbatim.
func rawToken(t testing.TB, header, claims map[string]any, secret []byte, sig []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var mac hash.Hash
	switch header["alg"] {
	case "HS256":
		mac = hmac.New(sha256.New, secret)
	case "HS512":
		mac = hmac.New(sha512.New, secret)
	}
	if mac != nil {
		mac.Write([]byte(signing))
		sig = mac.Sum(nil)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// goodClaims are the claims Issue would write for user "u123" at t0.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": Issuer,
		"sub": "u123",
		"iat": t0.Unix(),
		"exp": t0.Add(time.Hour).Unix(),
		"jti": "abc",
	}
}

func hs256(kid string) map[string]any {
	return map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}
}

// with returns a copy of m with k set to v (or deleted when v is nil).
func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m))
	for mk, mv := range m {
		out[mk] = mv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// segment decodes part i of a JWT.
func segment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := bytes.Split([]byte(tok), []byte("."))
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(string(parts[i]))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
