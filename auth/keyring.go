package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Key is a named secret; ID appears as "kid" in tokens and URLs.
type Key struct {
	ID     string
	Secret []byte
}

// Limits on keys.
const (
	// MinSecretBytes is the shortest secret accepted: 256 bits, the size of
	// an HMAC-SHA256 output (RFC 7518 §3.2).
	MinSecretBytes = 32
	// MaxKeyIDLength is the longest key id accepted.
	MaxKeyIDLength = 32
	// bareKeyID is the id given to a secret configured without one.
	bareKeyID = "k1"
)

// Keyring holds the keys; the first is the active signing key, the rest
// still verify (rotation). A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	keys []Key
}

// NewKeyring returns a keyring of keys, the first being the signing key. It
// fails if keys is empty, an ID repeats, an ID is not 1-32 characters of
// [A-Za-z0-9._-], or a secret is shorter than MinSecretBytes. The secrets are
// copied. Errors name a key by its position, never by its id or secret: when
// a bare secret contains a colon, what parses as its id is part of the secret.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	kr := &Keyring{keys: make([]Key, len(keys))}
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("keyring: key %d: its id (before the first colon) must be 1-%d letters, digits or ._-; a secret that contains a colon needs an id in front, as in k1:secret", i+1, MaxKeyIDLength)
		}
		if j, ok := seen[k.ID]; ok {
			return nil, fmt.Errorf("keyring: keys %d and %d have the same id", j+1, i+1)
		}
		if len(k.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("keyring: key %d: secret is %d bytes, need at least %d", i+1, len(k.Secret), MinSecretBytes)
		}
		kr.keys[i] = Key{ID: k.ID, Secret: append([]byte(nil), k.Secret...)}
		seen[k.ID] = i
	}
	return kr, nil
}

// ParseKeyring parses a keyring from configuration: "kid1:secret1,kid2:secret2"
// with the signing key first. A string without any colon is a single bare
// secret and gets the id "k1". Space around entries is ignored; a secret runs
// from the first colon of its entry to the next comma. Errors never contain a
// secret.
func ParseKeyring(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keyring: empty")
	}
	if !strings.Contains(s, ":") {
		return NewKeyring(Key{ID: bareKeyID, Secret: []byte(s)})
	}
	entries := strings.Split(s, ",")
	keys := make([]Key, 0, len(entries))
	for i, e := range entries {
		id, secret, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok {
			return nil, fmt.Errorf("keyring: entry %d is not kid:secret", i+1)
		}
		keys = append(keys, Key{ID: strings.TrimSpace(id), Secret: []byte(strings.TrimSpace(secret))})
	}
	return NewKeyring(keys...)
}

// IDs returns the key ids, the signing key first (for logs; not secret).
func (k *Keyring) IDs() []string {
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.ID
	}
	return ids
}

// Contains reports the position (1-based) of the first key whose secret
// contains secret, or 0 if none does. Configuration checks use it to refuse
// the built-in development secrets under any id and in any position.
func (k *Keyring) Contains(secret []byte) int {
	for i, key := range k.keys {
		if bytes.Contains(key.Secret, secret) {
			return i + 1
		}
	}
	return 0
}

// SharesSecretWith reports whether a secret of k is also a secret of o: one
// secret used for two purposes (signing tokens and signing URLs) lets a
// leak of either forge both.
func (k *Keyring) SharesSecretWith(o *Keyring) bool {
	for _, key := range k.keys {
		for _, other := range o.keys {
			if bytes.Equal(key.Secret, other.Secret) {
				return true
			}
		}
	}
	return false
}

// active returns the signing key.
func (k *Keyring) active() Key { return k.keys[0] }

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > MaxKeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
