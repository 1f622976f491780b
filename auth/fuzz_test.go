package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/orderflow/orderflow"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// The fuzz targets run against fixed keys and a fixed clock, so that the
// valid tokens and URLs in the seed corpus stay valid forever.
var (
	fuzzNow  = t0.Add(10 * time.Minute)
	fuzzKeys = []Key{{ID: "k2", Secret: secretA}, {ID: "k1", Secret: secretB}}
)

// tokenReasons are all the messages Tokens.Verify may return.
var tokenReasons = map[string]bool{
	"token too long": true, "malformed token": true, "token algorithm not allowed": true,
	"unknown key id": true, "token signature invalid": true, "token expired": true,
	"token not valid yet": true, "token issuer invalid": true,
	"token missing required claim": true, "token subject invalid": true,
}

// urlReasons are all the messages URLSigner.Verify may return.
var urlReasons = map[string]bool{
	"status URL needs exactly one exp, kid and sig": true, "status URL order id malformed": true,
	"status URL expiry malformed": true, "status URL key id unknown": true,
	"status URL signature invalid": true, "status URL expired": true,
}

func FuzzVerifyToken(f *testing.F) {
	ring := mustKeyring(f, fuzzKeys...)
	tokens := NewTokens(ring, time.Hour, fixedClock(fuzzNow))
	f.Fuzz(func(t *testing.T, token string) {
		user, err := tokens.Verify(token)
		if err != nil {
			if user != "" {
				t.Fatalf("rejected token yields user %q", user)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			if !tokenReasons[err.Error()] {
				t.Fatalf("unexpected reason %q", err)
			}
			if errors.Is(err, ErrExpiredToken) != (err.Error() == "token expired") {
				t.Fatalf("reason %q and ErrExpiredToken disagree", err)
			}
			return
		}
		// Accepted: the token must be one that a holder of a listed key signed
		// with HS256, well formed, current and for a valid user.
		if !orderflow.ValidUserID(user) {
			t.Fatalf("accepted token has invalid sub %q", user)
		}
		if len(token) > MaxTokenBytes {
			t.Fatalf("accepted a token of %d bytes", len(token))
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		var claims jwt.RegisteredClaims
		tok, _, err := jwt.NewParser().ParseUnverified(token, &claims)
		if err != nil {
			t.Fatalf("accepted token does not parse: %v", err)
		}
		if tok.Header["alg"] != "HS256" {
			t.Fatalf("accepted alg %v", tok.Header["alg"])
		}
		kid, _ := tok.Header["kid"].(string)
		secret, ok := fuzzSecret(kid)
		if !ok {
			t.Fatalf("accepted unknown kid %v", tok.Header["kid"])
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted a signature that is not the HMAC of kid %q", kid)
		}
		if claims.Subject != user || claims.Issuer != Issuer {
			t.Fatalf("claims sub %q iss %q, Verify returned %q", claims.Subject, claims.Issuer, user)
		}
		if claims.ExpiresAt == nil || !fuzzNow.Before(claims.ExpiresAt.Add(Leeway)) {
			t.Fatalf("accepted a token expiring at %v at %v", claims.ExpiresAt, fuzzNow)
		}
		if claims.IssuedAt == nil || claims.IssuedAt.After(fuzzNow.Add(Leeway)) {
			t.Fatalf("accepted a token issued at %v at %v", claims.IssuedAt, fuzzNow)
		}
		if again, err := tokens.Verify(token); err != nil || again != user {
			t.Fatalf("second Verify: got %q, %v; want %q", again, err, user)
		}
	})
}

// fuzzSecret returns the secret of fuzz key kid.
func fuzzSecret(kid string) ([]byte, bool) {
	for _, k := range fuzzKeys {
		if k.ID == kid {
			return k.Secret, true
		}
	}
	return nil, false
}

func FuzzVerifyURL(f *testing.F) {
	ring := mustKeyring(f, fuzzKeys...)
	signer := NewURLSigner(ring)
	// byKey re-signs with the key an accepted URL names.
	byKey := map[string]*URLSigner{}
	for _, k := range fuzzKeys {
		byKey[k.ID] = NewURLSigner(mustKeyring(f, k))
	}
	f.Fuzz(func(t *testing.T, id, rawQuery string) {
		q, _ := url.ParseQuery(rawQuery) // partial results are fair game too
		got, err := signer.Verify(id, q, fuzzNow)
		if err != nil {
			if got != "" {
				t.Fatalf("rejected URL yields id %q", got)
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v does not wrap ErrBadSignature", err)
			}
			if !urlReasons[err.Error()] {
				t.Fatalf("unexpected reason %q", err)
			}
			if errors.Is(err, ErrURLExpired) != (err.Error() == "status URL expired") {
				t.Fatalf("reason %q and ErrURLExpired disagree", err)
			}
			return
		}
		if string(got) != id || !got.Valid() {
			t.Fatalf("accepted id %q, returned %q", id, got)
		}
		exp, err := strconv.ParseInt(q.Get(ParamExpires), 10, 64)
		if err != nil || exp <= fuzzNow.Unix() {
			t.Fatalf("accepted exp %q at %d", q.Get(ParamExpires), fuzzNow.Unix())
		}
		kid := q.Get(ParamKeyID)
		s, ok := byKey[kid]
		if !ok {
			t.Fatalf("accepted unknown kid %q", kid)
		}
		want := s.Sign(got, time.Unix(exp, 0))
		for _, p := range []string{ParamExpires, ParamKeyID, ParamSignature} {
			if q.Get(p) != want.Get(p) {
				t.Fatalf("accepted %s=%q, Sign gives %q", p, q.Get(p), want.Get(p))
			}
		}
	})
}

// fuzzSeeds builds the seed corpus. Names starting with "valid" must be
// accepted at fuzzNow; all others rejected.
func fuzzSeeds(t testing.TB) map[string]map[string][]string {
	ring := mustKeyring(t, fuzzKeys...)
	k1Only := mustKeyring(t, fuzzKeys[1])
	issue := func(kr *Keyring, at time.Time, user string) string {
		tok, _, err := NewTokens(kr, time.Hour, fixedClock(at)).Issue(user)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := issue(ring, t0, "u123")
	parts := strings.Split(valid, ".")
	other := strings.Split(issue(ring, t0, "admin"), ".")
	claims := goodClaims()

	signer := NewURLSigner(ring)
	good := signer.Sign(testOrderID, t0.Add(time.Hour))
	expired := signer.Sign(testOrderID, fuzzNow)
	rotated := NewURLSigner(k1Only).Sign(testOrderID, t0.Add(time.Hour))
	unknown := NewURLSigner(mustKeyring(t, Key{ID: "gone", Secret: secretC})).Sign(testOrderID, t0.Add(time.Hour))
	tamperedExp := edit(good, func(q url.Values) { q.Set(ParamExpires, strconv.FormatInt(t0.Add(48*time.Hour).Unix(), 10)) })
	dupSig := edit(good, func(q url.Values) { q.Add(ParamSignature, q.Get(ParamSignature)) })

	return map[string]map[string][]string{
		"FuzzVerifyToken": {
			"valid_active_key":  {valid},
			"valid_rotated_key": {issue(k1Only, t0, "alice@example.com")},
			"valid_long_user":   {issue(ring, t0, strings.Repeat("u", orderflow.MaxUserIDLength))},
			"expired":           {issue(ring, t0.Add(-3*time.Hour), "u123")},
			"iat_in_future":     {issue(ring, fuzzNow.Add(time.Hour), "u123")},
			"alg_none":          {rawToken(t, map[string]any{"alg": "none", "kid": "k2"}, claims, nil, nil)},
			"alg_hs512":         {rawToken(t, map[string]any{"alg": "HS512", "kid": "k2"}, claims, secretA, nil)},
			"alg_rs256":         {rawToken(t, map[string]any{"alg": "RS256", "kid": "k2"}, claims, nil, []byte("sig"))},
			"unknown_kid":       {rawToken(t, hs256("gone"), claims, secretC, nil)},
			"bad_sub":           {rawToken(t, hs256("k2"), with(claims, "sub", "u 1"), secretA, nil)},
			"tampered_payload":  {parts[0] + "." + other[1] + "." + parts[2]},
			"three_dots":        {"a.b.c"},
			"empty":             {""},
		},
		"FuzzVerifyURL": {
			"valid":             {testOrderID, good.Encode()},
			"valid_rotated_key": {testOrderID, rotated.Encode()},
			"valid_extra_param": {testOrderID, "x=1&" + good.Encode()},
			"expired":           {testOrderID, expired.Encode()},
			"tampered_id":       {otherOrderID, good.Encode()},
			"tampered_exp":      {testOrderID, tamperedExp.Encode()},
			"duplicate_sig":     {testOrderID, dupSig.Encode()},
			"unknown_kid":       {testOrderID, unknown.Encode()},
			"garbage_query":     {testOrderID, "exp=%zz&kid=;sig"},
			"empty":             {"", ""},
		},
	}
}

// TestFuzzSeedCorpus checks that the checked-in corpus exists and means what
// its names say: valid_* seeds are accepted by the fuzz setup, the others
// rejected. With -update-seeds it rewrites the corpus first.
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := fuzzSeeds(t)
	if *updateSeeds {
		for target, files := range seeds {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, args := range files {
				var b bytes.Buffer
				b.WriteString("go test fuzz v1\n")
				for _, a := range args {
					b.WriteString("string(" + strconv.Quote(a) + ")\n")
				}
				if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	tokens := NewTokens(mustKeyring(t, fuzzKeys...), time.Hour, fixedClock(fuzzNow))
	signer := NewURLSigner(mustKeyring(t, fuzzKeys...))
	for target, files := range seeds {
		for name := range files {
			t.Run(target+"/"+name, func(t *testing.T) {
				args := readSeed(t, filepath.Join("testdata", "fuzz", target, name))
				var err error
				switch target {
				case "FuzzVerifyToken":
					_, err = tokens.Verify(args[0])
				case "FuzzVerifyURL":
					q, _ := url.ParseQuery(args[1])
					_, err = signer.Verify(args[0], q, fuzzNow)
				}
				if wantOK := strings.HasPrefix(name, "valid"); wantOK != (err == nil) {
					t.Errorf("seed %s: got error %v, want accepted=%v", name, err, wantOK)
				}
			})
		}
	}
}

// readSeed parses a corpus file of string arguments.
func readSeed(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing seed (run go test -run TestFuzzSeedCorpus -update-seeds ./auth/): %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s is not a go test fuzz v1 file", path)
	}
	var args []string
	for _, l := range lines[1:] {
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(l, "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %q: %v", path, l, err)
		}
		args = append(args, s)
	}
	return args
}
