package auth

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow"
)

const (
	testOrderID  = "018f2a6b3c4d0000aaaabbbbccccdddd"
	otherOrderID = "018f2a6b3c4d0000aaaabbbbccccddde"
)

// edit returns a copy of q changed by f.
func edit(q url.Values, f func(url.Values)) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	f(c)
	return c
}

func TestURLSignerVerify(t *testing.T) {
	ring := mustKeyring(t, Key{ID: "new", Secret: secretA}, Key{ID: "old", Secret: secretB})
	signer := NewURLSigner(ring)
	exp := t0.Add(15 * time.Minute)
	good := signer.Sign(testOrderID, exp)
	byOld := NewURLSigner(mustKeyring(t, Key{ID: "old", Secret: secretB})).Sign(testOrderID, exp)
	byGone := NewURLSigner(mustKeyring(t, Key{ID: "gone", Secret: secretC})).Sign(testOrderID, exp)
	otherSig := signer.Sign(otherOrderID, exp).Get(ParamSignature)
	tests := []struct {
		name        string
		id          string
		q           url.Values
		at          time.Time
		wantReason  string
		wantExpired bool
	}{
		{name: "signed URL verifies before expiry", id: testOrderID, q: good, at: t0},
		{name: "signed URL verifies one second before expiry", id: testOrderID, q: good, at: exp.Add(-time.Second)},
		{name: "URL signed by a rotated-out but still listed key verifies", id: testOrderID, q: byOld, at: t0},
		{name: "extra query parameters are ignored", id: testOrderID, q: edit(good, func(q url.Values) { q.Set("cachebust", "1") }), at: t0},
		{name: "URL expires at its exp", id: testOrderID, q: good, at: exp, wantReason: "status URL expired", wantExpired: true},
		{name: "URL after its exp is expired", id: testOrderID, q: good, at: exp.Add(24 * time.Hour), wantReason: "status URL expired", wantExpired: true},
		{name: "another order id is a bad signature", id: otherOrderID, q: good, at: t0, wantReason: "status URL signature invalid"},
		{name: "later exp is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, strconv.FormatInt(exp.Unix()+3600, 10)) }), at: t0, wantReason: "status URL signature invalid"},
		{name: "expired URL with a tampered exp is a bad signature, not expired", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, strconv.FormatInt(exp.Unix()-1, 10)) }), at: exp, wantReason: "status URL signature invalid"},
		{name: "swapping kid to another listed key is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamKeyID, "old") }), at: t0, wantReason: "status URL signature invalid"},
		{name: "signature of another order is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamSignature, otherSig) }), at: t0, wantReason: "status URL signature invalid"},
		{name: "flipped signature character is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) {
			s := []byte(q.Get(ParamSignature))
			if s[0] == 'A' {
				s[0] = 'B'
			} else {
				s[0] = 'A'
			}
			q.Set(ParamSignature, string(s))
		}), at: t0, wantReason: "status URL signature invalid"},
		{name: "truncated signature is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamSignature, q.Get(ParamSignature)[:42]) }), at: t0, wantReason: "status URL signature invalid"},
		{name: "padded signature is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamSignature, q.Get(ParamSignature)+"=") }), at: t0, wantReason: "status URL signature invalid"},
		{name: "standard-base64 signature is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamSignature, "++++++++++++++++++++++++++++++++++++++++++A") }), at: t0, wantReason: "status URL signature invalid"},
		{name: "non-canonical final character is a bad signature", id: testOrderID, q: edit(good, func(q url.Values) {
			s := []byte(q.Get(ParamSignature))
			s[42] = 'B' // 43 characters carry 258 bits; the last 2 must be zero
			q.Set(ParamSignature, string(s))
		}), at: t0, wantReason: "status URL signature invalid"},
		{name: "kid not in the keyring is unknown", id: testOrderID, q: byGone, at: t0, wantReason: "status URL key id unknown"},
		{name: "missing exp is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Del(ParamExpires) }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "missing kid is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Del(ParamKeyID) }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "missing sig is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Del(ParamSignature) }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "empty sig is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamSignature, "") }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "duplicate exp is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Add(ParamExpires, strconv.FormatInt(exp.Unix()+3600, 10)) }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "duplicate kid is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Add(ParamKeyID, "old") }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "duplicate identical sig is rejected", id: testOrderID, q: edit(good, func(q url.Values) { q.Add(ParamSignature, q.Get(ParamSignature)) }), at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "no query at all is rejected", id: testOrderID, q: nil, at: t0, wantReason: "status URL needs exactly one exp, kid and sig"},
		{name: "upper-case order id is malformed", id: "018F2A6B3C4D0000AAAABBBBCCCCDDDD", q: good, at: t0, wantReason: "status URL order id malformed"},
		{name: "short order id is malformed", id: testOrderID[:31], q: good, at: t0, wantReason: "status URL order id malformed"},
		{name: "empty order id is malformed", id: "", q: good, at: t0, wantReason: "status URL order id malformed"},
		{name: "exp with a plus sign is malformed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, "+"+q.Get(ParamExpires)) }), at: t0, wantReason: "status URL expiry malformed"},
		{name: "exp with a leading zero is malformed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, "0"+q.Get(ParamExpires)) }), at: t0, wantReason: "status URL expiry malformed"},
		{name: "negative exp is malformed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, "-1") }), at: t0, wantReason: "status URL expiry malformed"},
		{name: "fractional exp is malformed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, q.Get(ParamExpires)+".5") }), at: t0, wantReason: "status URL expiry malformed"},
		{name: "exp of 19 digits is malformed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, "1000000000000000000") }), at: t0, wantReason: "status URL expiry malformed"},
		{name: "exp of 0 is well-formed but badly signed", id: testOrderID, q: edit(good, func(q url.Values) { q.Set(ParamExpires, "0") }), at: t0, wantReason: "status URL signature invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := signer.Verify(tc.id, tc.q, tc.at)
			if tc.wantReason == "" {
				if err != nil || got != orderflow.OrderID(tc.id) {
					t.Fatalf("Verify: got %q, %v; want %q, nil", got, err, tc.id)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify: got %q and no error, want %q", got, tc.wantReason)
			}
			if got != "" {
				t.Errorf("Verify: got id %q with an error, want none", got)
			}
			if err.Error() != tc.wantReason {
				t.Errorf("Verify: got reason %q, want %q", err, tc.wantReason)
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify: error %v does not wrap ErrBadSignature", err)
			}
			if got := errors.Is(err, ErrURLExpired); got != tc.wantExpired {
				t.Errorf("errors.Is(err, ErrURLExpired) = %v, want %v", got, tc.wantExpired)
			}
		})
	}
}

func TestURLSignerSign(t *testing.T) {
	ring := mustKeyring(t, Key{ID: "new", Secret: secretA}, Key{ID: "old", Secret: secretB})
	signer := NewURLSigner(ring)
	q := signer.Sign(testOrderID, t0.Add(1500*time.Millisecond))
	if got, want := q.Get(ParamExpires), strconv.FormatInt(t0.Unix()+1, 10); got != want {
		t.Errorf("exp: got %q, want %q (whole seconds)", got, want)
	}
	if got := q.Get(ParamKeyID); got != "new" {
		t.Errorf("kid: got %q, want the active key %q", got, "new")
	}
	if got := len(q.Get(ParamSignature)); got != 43 {
		t.Errorf("sig: got %d characters, want 43 (unpadded base64url of 32 bytes)", got)
	}
	if len(q) != 3 {
		t.Errorf("Sign: got parameters %v, want exp, kid, sig only", q)
	}
	// The values survive a trip through a real URL.
	u, err := url.Parse("http://localhost/orders/" + testOrderID + "/status?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Verify(testOrderID, u.Query(), t0); err != nil {
		t.Errorf("Verify after URL round trip: %v", err)
	}
	// Same inputs, same signature; another key, another signature.
	if again := signer.Sign(testOrderID, t0.Add(1500*time.Millisecond)); again.Encode() != q.Encode() {
		t.Errorf("Sign is not deterministic: %q then %q", q.Encode(), again.Encode())
	}
	other := NewURLSigner(mustKeyring(t, Key{ID: "new", Secret: secretB})).Sign(testOrderID, t0.Add(1500*time.Millisecond))
	if other.Get(ParamSignature) == q.Get(ParamSignature) {
		t.Error("two secrets produced the same signature")
	}
}

func TestURLSignerIsSafeForConcurrentUse(t *testing.T) {
	signer := NewURLSigner(mustKeyring(t, Key{ID: "k1", Secret: secretA}))
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for i := range 200 {
				exp := t0.Add(time.Duration(i+1) * time.Second)
				if _, err = signer.Verify(testOrderID, signer.Sign(testOrderID, exp), t0); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestURLExpiredIsABadSignature(t *testing.T) {
	if !errors.Is(ErrURLExpired, ErrBadSignature) {
		t.Fatal("ErrURLExpired does not match ErrBadSignature")
	}
}

func TestNewURLSignerPanicsWithoutKeyring(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewURLSigner(nil) did not panic")
		}
	}()
	NewURLSigner(nil)
}

func BenchmarkURLSign(b *testing.B) {
	signer := NewURLSigner(mustKeyring(b, Key{ID: "k1", Secret: secretA}))
	exp := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		signer.Sign(testOrderID, exp)
	}
}

func BenchmarkURLVerify(b *testing.B) {
	signer := NewURLSigner(mustKeyring(b, Key{ID: "k2", Secret: secretA}, Key{ID: "k1", Secret: secretB}))
	q := signer.Sign(testOrderID, t0.Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signer.Verify(testOrderID, q, t0); err != nil {
			b.Fatal(err)
		}
	}
}
