package auth

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

func TestTokensVerify(t *testing.T) {
	ring := mustKeyring(t, Key{ID: "new", Secret: secretA}, Key{ID: "old", Secret: secretB})
	oldOnly := mustKeyring(t, Key{ID: "old", Secret: secretB})
	retired := mustKeyring(t, Key{ID: "gone", Secret: secretC})
	issued := func(kr *Keyring, user string) func(t *testing.T) string {
		return func(t *testing.T) string {
			tok, _, err := NewTokens(kr, time.Hour, fixedClock(t0)).Issue(user)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	forged := func(header, claims map[string]any, secret []byte) func(t *testing.T) string {
		return func(t *testing.T) string { return rawToken(t, header, claims, secret, []byte("not-a-real-signature")) }
	}
	literal := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	changeSig := func(tok string) string {
		i := strings.LastIndexByte(tok, '.')
		sig := []byte(tok[i+1:])
		if sig[0] == 'A' {
			sig[0] = 'B'
		} else {
			sig[0] = 'A'
		}
		return tok[:i+1] + string(sig)
	}
	tests := []struct {
		name        string
		token       func(t *testing.T) string
		at          time.Time
		wantUser    string
		wantReason  string
		wantExpired bool
	}{
		{name: "token issued by the active key verifies", token: issued(ring, "u123"), at: t0, wantUser: "u123"},
		{name: "token of a rotated-out but still listed key verifies", token: issued(oldOnly, "alice@example.com"), at: t0.Add(time.Minute), wantUser: "alice@example.com"},
		{name: "hand-built token with every required claim verifies", token: forged(hs256("new"), goodClaims(), secretA), at: t0, wantUser: "u123"},
		{name: "token still verifies within the leeway after exp", token: issued(ring, "u123"), at: t0.Add(time.Hour + Leeway - time.Second), wantUser: "u123"},
		{name: "token past exp and leeway is expired", token: issued(ring, "u123"), at: t0.Add(time.Hour + Leeway), wantReason: "token expired", wantExpired: true},
		{name: "token long past exp is expired", token: issued(ring, "u123"), at: t0.Add(48 * time.Hour), wantReason: "token expired", wantExpired: true},
		{name: "iat in the future within the leeway is accepted", token: forged(hs256("new"), with(goodClaims(), "iat", t0.Add(Leeway).Unix()), secretA), at: t0, wantUser: "u123"},
		{name: "iat in the future beyond the leeway is rejected", token: forged(hs256("new"), with(goodClaims(), "iat", t0.Add(Leeway+time.Second).Unix()), secretA), at: t0, wantReason: "token not valid yet"},
		{name: "nbf in the future beyond the leeway is rejected", token: forged(hs256("new"), with(goodClaims(), "nbf", t0.Add(time.Hour).Unix()), secretA), at: t0, wantReason: "token not valid yet"},
		{name: "alg none is not allowed", token: forged(map[string]any{"alg": "none", "typ": "JWT", "kid": "new"}, goodClaims(), nil), at: t0, wantReason: "token algorithm not allowed"},
		{name: "alg none with an empty signature is not allowed", token: func(t *testing.T) string {
			tok := rawToken(t, map[string]any{"alg": "none", "kid": "new"}, goodClaims(), nil, nil)
			return tok
		}, at: t0, wantReason: "token algorithm not allowed"},
		{name: "HS512 signed with the right key is not allowed", token: forged(map[string]any{"alg": "HS512", "kid": "new"}, goodClaims(), secretA), at: t0, wantReason: "token algorithm not allowed"},
		{name: "RS256 header is not allowed", token: forged(map[string]any{"alg": "RS256", "kid": "new"}, goodClaims(), nil), at: t0, wantReason: "token algorithm not allowed"},
		{name: "unknown alg is not allowed", token: forged(map[string]any{"alg": "XX999", "kid": "new"}, goodClaims(), nil), at: t0, wantReason: "token algorithm not allowed"},
		{name: "missing alg is not allowed", token: forged(map[string]any{"kid": "new"}, goodClaims(), nil), at: t0, wantReason: "token algorithm not allowed"},
		{name: "kid not in the keyring is unknown", token: issued(retired, "u123"), at: t0, wantReason: "unknown key id"},
		{name: "missing kid is unknown", token: forged(map[string]any{"alg": "HS256"}, goodClaims(), secretA), at: t0, wantReason: "unknown key id"},
		{name: "non-string kid is unknown", token: forged(map[string]any{"alg": "HS256", "kid": 1}, goodClaims(), secretA), at: t0, wantReason: "unknown key id"},
		{name: "known kid with another secret has an invalid signature", token: forged(hs256("new"), goodClaims(), secretB), at: t0, wantReason: "token signature invalid"},
		{name: "tampered payload has an invalid signature", token: func(t *testing.T) string {
			good := issued(ring, "u123")(t)
			other := rawToken(t, hs256("new"), with(goodClaims(), "sub", "admin"), secretC, nil)
			parts, otherParts := strings.Split(good, "."), strings.Split(other, ".")
			return parts[0] + "." + otherParts[1] + "." + parts[2]
		}, at: t0, wantReason: "token signature invalid"},
		{name: "tampered signature is invalid", token: func(t *testing.T) string { return changeSig(issued(ring, "u123")(t)) }, at: t0, wantReason: "token signature invalid"},
		{name: "signature of another token is invalid", token: func(t *testing.T) string {
			a, b := issued(ring, "u123")(t), issued(ring, "u124")(t)
			return a[:strings.LastIndexByte(a, '.')] + b[strings.LastIndexByte(b, '.'):]
		}, at: t0, wantReason: "token signature invalid"},
		{name: "token over 4 KiB is rejected before parsing", token: forged(hs256("new"), with(goodClaims(), "pad", strings.Repeat("x", MaxTokenBytes)), secretA), at: t0, wantReason: "token too long"},
		{name: "empty sub is invalid", token: forged(hs256("new"), with(goodClaims(), "sub", ""), secretA), at: t0, wantReason: "token subject invalid"},
		{name: "missing sub is invalid", token: forged(hs256("new"), with(goodClaims(), "sub", nil), secretA), at: t0, wantReason: "token subject invalid"},
		{name: "sub with a space is invalid", token: forged(hs256("new"), with(goodClaims(), "sub", "u 1"), secretA), at: t0, wantReason: "token subject invalid"},
		{name: "sub over 128 characters is invalid", token: forged(hs256("new"), with(goodClaims(), "sub", strings.Repeat("u", orderflow.MaxUserIDLength+1)), secretA), at: t0, wantReason: "token subject invalid"},
		{name: "non-string sub is malformed", token: forged(hs256("new"), with(goodClaims(), "sub", 42), secretA), at: t0, wantReason: "malformed token"},
		{name: "missing exp is rejected", token: forged(hs256("new"), with(goodClaims(), "exp", nil), secretA), at: t0, wantReason: "token missing required claim"},
		{name: "missing iat is rejected", token: forged(hs256("new"), with(goodClaims(), "iat", nil), secretA), at: t0, wantReason: "token missing required claim"},
		{name: "exp as a numeric string is malformed (RFC 7519 NumericDate is a number)", token: forged(hs256("new"), with(goodClaims(), "exp", strconv.FormatInt(t0.Add(time.Hour).Unix(), 10)), secretA), at: t0, wantReason: "malformed token"},
		{name: "iat as a numeric string is malformed", token: forged(hs256("new"), with(goodClaims(), "iat", strconv.FormatInt(t0.Unix(), 10)), secretA), at: t0, wantReason: "malformed token"},
		{name: "nbf as a numeric string is malformed", token: forged(hs256("new"), with(goodClaims(), "nbf", strconv.FormatInt(t0.Unix(), 10)), secretA), at: t0, wantReason: "malformed token"},
		{name: "exp as a boolean is malformed", token: forged(hs256("new"), with(goodClaims(), "exp", true), secretA), at: t0, wantReason: "malformed token"},
		{name: "a fractional exp is a NumericDate", token: forged(hs256("new"), with(goodClaims(), "exp", float64(t0.Add(time.Hour).Unix())+0.5), secretA), at: t0, wantUser: "u123"},
		{name: "non-numeric exp is malformed", token: forged(hs256("new"), with(goodClaims(), "exp", "tomorrow"), secretA), at: t0, wantReason: "malformed token"},
		{name: "another issuer is rejected", token: forged(hs256("new"), with(goodClaims(), "iss", "someone-else"), secretA), at: t0, wantReason: "token issuer invalid"},
		{name: "missing issuer is rejected", token: forged(hs256("new"), with(goodClaims(), "iss", nil), secretA), at: t0, wantReason: "token missing required claim"},
		{name: "empty string is malformed", token: literal(""), at: t0, wantReason: "malformed token"},
		{name: "one segment is malformed", token: literal("abc"), at: t0, wantReason: "malformed token"},
		{name: "four segments are malformed", token: literal("a.b.c.d"), at: t0, wantReason: "malformed token"},
		{name: "header that is not base64 is malformed", token: literal("!!.e30.AAAA"), at: t0, wantReason: "malformed token"},
		{name: "header that is not JSON is malformed", token: literal("bm90anNvbg.e30.AAAA"), at: t0, wantReason: "malformed token"},
		{name: "padded segments are malformed", token: func(t *testing.T) string {
			tok := issued(ring, "u123")(t)
			return strings.Replace(tok, ".", "=.", 1)
		}, at: t0, wantReason: "malformed token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tokens := NewTokens(ring, time.Hour, fixedClock(tc.at))
			user, err := tokens.Verify(tc.token(t))
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Verify: got error %q, want user %q", err, tc.wantUser)
				}
				if user != tc.wantUser {
					t.Fatalf("Verify: got user %q, want %q", user, tc.wantUser)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify: got user %q and no error, want %q", user, tc.wantReason)
			}
			if user != "" {
				t.Errorf("Verify: got user %q with an error, want none", user)
			}
			if got := err.Error(); got != tc.wantReason {
				t.Errorf("Verify: got reason %q, want %q", got, tc.wantReason)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify: error %v does not wrap ErrInvalidToken", err)
			}
			if got := errors.Is(err, ErrExpiredToken); got != tc.wantExpired {
				t.Errorf("errors.Is(err, ErrExpiredToken) = %v, want %v", got, tc.wantExpired)
			}
		})
	}
}

func TestExpiredTokenIsAnInvalidToken(t *testing.T) {
	if !errors.Is(ErrExpiredToken, ErrInvalidToken) {
		t.Fatal("ErrExpiredToken does not match ErrInvalidToken")
	}
	if errors.Is(ErrInvalidToken, ErrExpiredToken) {
		t.Fatal("ErrInvalidToken matches ErrExpiredToken")
	}
	if got := ErrExpiredToken.Error(); got != "token expired" {
		t.Fatalf("ErrExpiredToken.Error() = %q, want %q", got, "token expired")
	}
}

func TestTokensIssue(t *testing.T) {
	ring := mustKeyring(t, Key{ID: "k2", Secret: secretA}, Key{ID: "k1", Secret: secretB})
	at := t0.Add(700 * time.Millisecond)
	tokens := NewTokens(ring, 15*time.Minute, fixedClock(at))
	tok, expiresIn, err := tokens.Issue("u123")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if expiresIn != 15*time.Minute {
		t.Errorf("expiresIn: got %v, want %v", expiresIn, 15*time.Minute)
	}
	header, claims := segment(t, tok, 0), segment(t, tok, 1)
	for k, want := range map[string]any{"alg": "HS256", "kid": "k2", "typ": "JWT"} {
		if header[k] != want {
			t.Errorf("header %s: got %v, want %v", k, header[k], want)
		}
	}
	for k, want := range map[string]any{
		"iss": "orderflow",
		"sub": "u123",
		"iat": float64(t0.Unix()),
		"exp": float64(t0.Add(15 * time.Minute).Unix()),
	} {
		if claims[k] != want {
			t.Errorf("claim %s: got %v, want %v", k, claims[k], want)
		}
	}
	jti, _ := claims["jti"].(string)
	if len(jti) < 16 {
		t.Errorf("claim jti: got %q, want a random id", jti)
	}
	tok2, _, err := tokens.Issue("u123")
	if err != nil {
		t.Fatal(err)
	}
	if jti2 := segment(t, tok2, 1)["jti"]; jti2 == jti {
		t.Errorf("two tokens share jti %q", jti)
	}
	if got, err := tokens.Verify(tok); err != nil || got != "u123" {
		t.Errorf("Verify(Issue(u123)): got %q, %v; want u123, nil", got, err)
	}
}

func TestTokensIssueRejectsInvalidUserIDs(t *testing.T) {
	tokens := NewTokens(mustKeyring(t, Key{ID: "k1", Secret: secretA}), time.Hour, fixedClock(t0))
	for _, id := range []string{"", " u1", "u/1", "-u1", strings.Repeat("a", orderflow.MaxUserIDLength+1)} {
		tok, _, err := tokens.Issue(id)
		if orderflow.ErrorCode(err) != orderflow.EInvalid {
			t.Errorf("Issue(%q): got %q, %v; want an %s error", id, tok, err, orderflow.EInvalid)
		}
	}
}

func TestNewTokensDefaults(t *testing.T) {
	ring := mustKeyring(t, Key{ID: "k1", Secret: secretA})
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"zero ttl means the default", 0, DefaultTokenTTL},
		{"negative ttl means the default", -time.Minute, DefaultTokenTTL},
		{"sub-second ttl means the default", 999 * time.Millisecond, DefaultTokenTTL},
		{"ttl is cut to whole seconds", 90*time.Second + 500*time.Millisecond, 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := NewTokens(ring, tc.ttl, fixedClock(t0)).Issue("u1")
			if err != nil || got != tc.want {
				t.Fatalf("Issue: got %v, %v; want %v, nil", got, err, tc.want)
			}
		})
	}
	t.Run("nil clock means the wall clock", func(t *testing.T) {
		tokens := NewTokens(ring, time.Hour, nil)
		tok, _, err := tokens.Issue("u1")
		if err != nil {
			t.Fatal(err)
		}
		if user, err := tokens.Verify(tok); err != nil || user != "u1" {
			t.Fatalf("Verify: got %q, %v; want u1, nil", user, err)
		}
		// A token issued by the wall clock is expired at t0+100y.
		if _, err := NewTokens(ring, time.Hour, fixedClock(time.Now().AddDate(100, 0, 0))).Verify(tok); !errors.Is(err, ErrExpiredToken) {
			t.Fatalf("Verify in 100 years: got %v, want ErrExpiredToken", err)
		}
	})
	t.Run("nil keyring panics at construction", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("NewTokens(nil) did not panic")
			}
		}()
		NewTokens(nil, time.Hour, nil)
	})
}

func BenchmarkTokensVerify(b *testing.B) {
	tokens := NewTokens(mustKeyring(b, Key{ID: "k2", Secret: secretA}, Key{ID: "k1", Secret: secretB}), time.Hour, fixedClock(t0))
	tok, _, err := tokens.Issue("u123")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokensIssue(b *testing.B) {
	tokens := NewTokens(mustKeyring(b, Key{ID: "k1", Secret: secretA}), time.Hour, fixedClock(t0))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tokens.Issue("u123"); err != nil {
			b.Fatal(err)
		}
	}
}
