package auth

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/orderflow/orderflow"
)

// MaxPasswordBytes is the longest password bcrypt takes into account;
// HashPassword refuses longer ones and Users.Check never accepts them.
const MaxPasswordBytes = 72

// maxUsersLine bounds a line of the users file.
const maxUsersLine = 4096

// Users is the login source outside dev mode: user ids and their bcrypt
// hashes. It is safe for concurrent use, Replace included.
type Users struct {
	set atomic.Pointer[userSet]
}

type userSet struct {
	hashes map[string][]byte
	// dummy is compared against for unknown users so that Check costs the
	// same whether or not the user exists.
	dummy []byte
}

// Replace makes u check against the users of v (a users file read again);
// v must not be nil.
func (u *Users) Replace(v *Users) { u.set.Store(v.set.Load()) }

// LoadUsers reads a users file: one "user_id:hash" per line, where user_id
// satisfies orderflow.ValidUserID and hash is a bcrypt hash ($2a$, $2b$ or
// $2y$). Blank lines and lines starting with '#' are skipped; space around a
// line is ignored. A repeated user, a malformed line or a file without users
// is an error that names the line number (hashes are never quoted).
func LoadUsers(r io.Reader) (*Users, error) {
	u := &userSet{hashes: make(map[string][]byte)}
	firstLine := make(map[string]int)
	maxCost := bcrypt.MinCost
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxUsersLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		id, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("users line %d: want user_id:bcrypt_hash", n)
		}
		if !orderflow.ValidUserID(id) {
			return nil, fmt.Errorf("users line %d: user id must be 1-%d letters, digits or ._@+-", n, orderflow.MaxUserIDLength)
		}
		if prev, dup := firstLine[id]; dup {
			return nil, fmt.Errorf("users line %d: user %q already defined on line %d", n, id, prev)
		}
		cost, err := bcryptCost(hash)
		if err != nil {
			return nil, fmt.Errorf("users line %d: user %q: %w", n, id, err)
		}
		maxCost = max(maxCost, cost)
		u.hashes[id] = []byte(hash)
		firstLine[id] = n
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("users line %d: longer than %d bytes", n+1, maxUsersLine)
		}
		return nil, fmt.Errorf("read users: %w", err)
	}
	if len(u.hashes) == 0 {
		return nil, errors.New("users: no users defined")
	}
	// The dummy has the highest cost in the file, so that an unknown user
	// costs at least as much as any real one.
	var pw [16]byte
	_, _ = rand.Read(pw[:]) // crypto/rand.Read never fails (Go 1.24+)
	dummy, err := bcrypt.GenerateFromPassword(pw[:], maxCost)
	if err != nil {
		return nil, fmt.Errorf("users: dummy hash: %w", err)
	}
	u.dummy = dummy
	users := &Users{}
	users.set.Store(u)
	return users, nil
}

// bcryptCost checks that hash is a well-formed bcrypt hash of a supported
// version and returns its cost.
func bcryptCost(hash string) (int, error) {
	if len(hash) != 60 || !(strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
		return 0, errors.New("hash is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0, fmt.Errorf("hash is not a valid bcrypt hash: %w", err)
	}
	return cost, nil
}

// Check reports whether password is userID's password. An unknown user
// costs the same bcrypt comparison (against a dummy hash) as a known one, so
// the time taken does not reveal who exists.
func (u *Users) Check(userID, password string) bool {
	set := u.set.Load()
	hash, known := set.hashes[userID]
	if !known {
		hash = set.dummy
	}
	// Compare even when the password is too long, to keep the timing.
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	return ok && known && len(password) <= MaxPasswordBytes
}

// HashPassword returns a bcrypt hash of password at bcrypt.DefaultCost, in
// the form LoadUsers reads. Empty passwords and passwords longer than
// MaxPasswordBytes are refused.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: password is empty")
	}
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("hash password: password is longer than %d bytes", MaxPasswordBytes)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}
