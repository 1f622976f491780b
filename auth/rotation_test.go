package auth

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A rotation replaces the keyring in place: the new active key signs what
// is issued from then on, a key kept in the ring goes on verifying what it
// signed, and a key removed from it verifies nothing any more.
func TestSetKeysRotatesTokens(t *testing.T) {
	tok := NewTokens(mustKeyring(t, Key{"k1", secretA}), 0, fixedClock(t0))
	old, _, err := tok.Issue("ada")
	if err != nil {
		t.Fatal(err)
	}
	tok.SetKeys(mustKeyring(t, Key{"k2", secretB}, Key{"k1", secretA}))
	fresh, _, _ := tok.Issue("ada")
	if got := kidOf(t, fresh); got != "k2" {
		t.Errorf("after adding k2 first: new token kid %q, want k2", got)
	}
	for name, s := range map[string]string{"old": old, "new": fresh} {
		if _, err := tok.Verify(s); err != nil {
			t.Errorf("%s token with k1 and k2 in the ring: %v, want valid", name, err)
		}
	}
	tok.SetKeys(mustKeyring(t, Key{"k2", secretB}))
	if _, err := tok.Verify(old); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("k1's token once k1 is removed: %v, want ErrInvalidToken", err)
	}
	if _, err := tok.Verify(fresh); err != nil {
		t.Errorf("k2's token: %v, want valid", err)
	}
}

func TestSetKeysRotatesStatusURLs(t *testing.T) {
	s := NewURLSigner(mustKeyring(t, Key{"k1", secretA}))
	exp := t0.Add(time.Hour)
	old := s.Sign(testOrderID, exp)
	s.SetKeys(mustKeyring(t, Key{"k2", secretB}, Key{"k1", secretA}))
	fresh := s.Sign(testOrderID, exp)
	if got := fresh.Get(ParamKeyID); got != "k2" {
		t.Errorf("new URL kid %q, want k2", got)
	}
	for name, q := range map[string]url.Values{"old": old, "new": fresh} {
		if _, err := s.Verify(string(testOrderID), q, t0); err != nil {
			t.Errorf("%s URL with k1 and k2 in the ring: %v, want valid", name, err)
		}
	}
	s.SetKeys(mustKeyring(t, Key{"k2", secretB}))
	if _, err := s.Verify(string(testOrderID), old, t0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("k1's URL once k1 is removed: %v, want ErrBadSignature", err)
	}
}

func TestUsersReplace(t *testing.T) {
	u := mustLoadUsers(t, "ada:"+cheapHash(t, "one")+"\n")
	u.Replace(mustLoadUsers(t, "bob:"+cheapHash(t, "two")+"\n"))
	if u.Check("ada", "one") || !u.Check("bob", "two") {
		t.Errorf("after Replace: ada %v, bob %v; want only bob", u.Check("ada", "one"), u.Check("bob", "two"))
	}
}

// kidOf returns the kid header of a JWT.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, &jwt.RegisteredClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}
