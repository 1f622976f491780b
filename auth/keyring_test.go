package auth

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewKeyringRejects(t *testing.T) {
	tests := []struct {
		name    string
		keys    []Key
		wantErr string
	}{
		{"no keys", nil, "no keys"},
		{"empty id", []Key{{ID: "", Secret: secretA}}, "must be 1-32"},
		{"id over 32 characters", []Key{{ID: strings.Repeat("k", 33), Secret: secretA}}, "must be 1-32"},
		{"id with a colon", []Key{{ID: "k:1", Secret: secretA}}, "must be 1-32"},
		{"id with a space", []Key{{ID: "k 1", Secret: secretA}}, "must be 1-32"},
		{"id with a non-ASCII letter", []Key{{ID: "kü", Secret: secretA}}, "must be 1-32"},
		{"duplicate id", []Key{{ID: "k1", Secret: secretA}, {ID: "k1", Secret: secretB}}, "keys 1 and 2 have the same id"},
		{"secret of 31 bytes", []Key{{ID: "k1", Secret: secretA[:31]}}, "31 bytes, need at least 32"},
		{"empty secret", []Key{{ID: "k1"}}, "0 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := NewKeyring(tc.keys...)
			if err == nil {
				t.Fatalf("got keyring %v, want error containing %q", kr.IDs(), tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got error %q, want it to contain %q", err, tc.wantErr)
			}
			for _, k := range tc.keys {
				if len(k.Secret) > 0 && strings.Contains(err.Error(), string(k.Secret)) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestNewKeyringAccepts(t *testing.T) {
	long := strings.Repeat("k", 32)
	kr, err := NewKeyring(Key{ID: "a.b_c-D9", Secret: secretA}, Key{ID: long, Secret: secretB[:32]})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.b_c-D9", long}, kr.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestNewKeyringCopiesSecrets(t *testing.T) {
	secret := append([]byte(nil), secretA...)
	kr := mustKeyring(t, Key{ID: "k1", Secret: secret})
	tokens := NewTokens(kr, 0, fixedClock(t0))
	tok, _, err := tokens.Issue("u1")
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff
	if _, err := tokens.Verify(tok); err != nil {
		t.Fatalf("changing the caller's secret slice changed the keyring: %v", err)
	}
}

func TestParseKeyring(t *testing.T) {
	a, b := string(secretA), string(secretB)
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		wantErr string
	}{
		{name: "bare secret gets id k1", in: a, wantIDs: []string{"k1"}},
		{name: "bare secret with a comma stays one secret", in: a + "," + b, wantIDs: []string{"k1"}},
		{name: "surrounding space and newline are ignored", in: "  " + a + "\n", wantIDs: []string{"k1"}},
		{name: "one named key", in: "2026-03:" + a, wantIDs: []string{"2026-03"}},
		{name: "two keys keep their order", in: "new:" + a + ", old:" + b, wantIDs: []string{"new", "old"}},
		{name: "secret may contain a colon", in: "k1:" + a + ":x", wantIDs: []string{"k1"}},
		{name: "empty string is an error", in: "  ", wantErr: "empty"},
		{name: "entry without a colon among named keys is an error", in: "k1:" + a + "," + b, wantErr: "entry 2 is not kid:secret"},
		{name: "trailing comma is an error", in: "k1:" + a + ",", wantErr: "entry 2 is not kid:secret"},
		{name: "short bare secret is an error", in: "short", wantErr: "at least 32"},
		{name: "short named secret is an error", in: "k1:short", wantErr: "at least 32"},
		{name: "bad key id is an error", in: "k 1:" + a, wantErr: "must be 1-32"},
		{name: "duplicate key id is an error", in: "k1:" + a + ",k1:" + b, wantErr: "have the same id"},
		{name: "a bare secret with a colon is refused without echoing what precedes the colon", in: "s3cr3t/with+slash:" + a, wantErr: "needs an id in front"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := ParseKeyring(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				for _, s := range []string{a, b, "short", "s3cr3t"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q reveals a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want keys %v", err, tc.wantIDs)
			}
			if diff := cmp.Diff(tc.wantIDs, kr.IDs()); diff != "" {
				t.Errorf("IDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseKeyringSecretsAreUsedVerbatim(t *testing.T) {
	// A token signed with the secret as written must verify with the parsed keyring.
	parsed, err := ParseKeyring("old:" + string(secretB) + " , new:" + string(secretA))
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := NewTokens(mustKeyring(t, Key{ID: "new", Secret: secretA}), 0, fixedClock(t0)).Issue("u1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTokens(parsed, 0, fixedClock(t0)).Verify(tok); err != nil {
		t.Fatalf("Verify with parsed keyring: %v", err)
	}
}

func TestKeyringContains(t *testing.T) {
	kr := mustKeyring(t, Key{ID: "new", Secret: secretA}, Key{ID: "old", Secret: append([]byte("x"), secretB...)})
	if got := kr.Contains(secretA); got != 1 {
		t.Errorf("Contains(signing secret) = %d, want 1", got)
	}
	if got := kr.Contains(secretB); got != 2 {
		t.Errorf("Contains(secret inside the second key) = %d, want 2", got)
	}
	if got := kr.Contains([]byte("not-a-secret-of-this-keyring-at-all")); got != 0 {
		t.Errorf("Contains(foreign secret) = %d, want 0", got)
	}
}

func TestKeyringSharesSecretWith(t *testing.T) {
	ab := mustKeyring(t, Key{ID: "a", Secret: secretA}, Key{ID: "b", Secret: secretB})
	b := mustKeyring(t, Key{ID: "other-id", Secret: secretB})
	c := mustKeyring(t, Key{ID: "a", Secret: append(append([]byte(nil), secretA...), 'x')})
	if !ab.SharesSecretWith(b) || !b.SharesSecretWith(ab) {
		t.Error("a secret in both keyrings, under different ids, is not seen")
	}
	if ab.SharesSecretWith(c) {
		t.Error("keyrings with the same ids and different secrets are said to share one")
	}
}
