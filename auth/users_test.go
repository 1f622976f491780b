package auth

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/crypto/bcrypt"
)

// cheapHash hashes at the minimum cost so tests stay fast.
func cheapHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustLoadUsers(t testing.TB, file string) *Users {
	t.Helper()
	u, err := LoadUsers(strings.NewReader(file))
	if err != nil {
		t.Fatalf("LoadUsers: %v", err)
	}
	return u
}

func TestUsersCheck(t *testing.T) {
	alice := cheapHash(t, "correct horse")
	bob := "$2y$" + strings.TrimPrefix(cheapHash(t, "battery staple"), "$2a$")
	long := strings.Repeat("p", MaxPasswordBytes)
	carol := cheapHash(t, long)
	file := "# orderflow users\n\n" +
		"alice:" + alice + "\r\n" +
		"   # indented comment\n" +
		"  bob@example.com:" + bob + "  \n" +
		"carol:" + carol + "\n"
	users := mustLoadUsers(t, file)
	tests := []struct {
		name     string
		user, pw string
		want     bool
	}{
		{"right password is accepted", "alice", "correct horse", true},
		{"$2y$ hash is accepted", "bob@example.com", "battery staple", true},
		{"password of exactly 72 bytes is accepted", "carol", long, true},
		{"wrong password is refused", "alice", "correct horse!", false},
		{"another user's password is refused", "alice", "battery staple", false},
		{"empty password is refused", "alice", "", false},
		{"unknown user is refused", "mallory", "correct horse", false},
		{"user id is case sensitive", "Alice", "correct horse", false},
		{"empty user is refused", "", "correct horse", false},
		{"password longer than 72 bytes is refused even if its prefix matches", "carol", long + "extra", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := users.Check(tc.user, tc.pw); got != tc.want {
				t.Errorf("Check(%q, %q) = %v, want %v", tc.user, tc.pw, got, tc.want)
			}
		})
	}
}

func TestLoadUsersRejects(t *testing.T) {
	good := cheapHash(t, "pw")
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{"empty file", "", "no users"},
		{"only comments and blank lines", "# a\n\n   \n# b\n", "no users"},
		{"line without a colon", "# users\nalice " + good + "\n", "line 2: want user_id:bcrypt_hash"},
		{"invalid user id", "al ice:" + good + "\n", "line 1: user id must be"},
		{"empty user id", ":" + good + "\n", "line 1: user id must be"},
		{"plain-text password instead of a hash", "alice:hunter2\n", `line 1: user "alice": hash is not a bcrypt hash`},
		{"argon2 hash", "alice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\n", "line 1"},
		{"unsupported bcrypt version $2x$", "alice:$2x$" + good[4:] + "\n", "line 1"},
		{"truncated hash", "alice:" + good[:59] + "\n", "line 1"},
		{"hash with an invalid cost", "alice:$2a$99" + good[6:] + "\n", "line 1: user \"alice\": hash is not a valid bcrypt hash"},
		{"repeated user", "alice:" + good + "\n#\nalice:" + good + "\n", `line 3: user "alice" already defined on line 1`},
		{"line too long", "alice:" + good + "\n" + strings.Repeat("x", maxUsersLine+1) + "\n", "line 2: longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := LoadUsers(strings.NewReader(tc.file))
			if err == nil {
				t.Fatalf("LoadUsers: got %v, want error containing %q", u, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("LoadUsers: got %q, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), good[7:]) {
				t.Errorf("LoadUsers: error %q quotes a hash", err)
			}
		})
	}
}

func TestLoadUsersReportsReadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := LoadUsers(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("LoadUsers: got %v, want it to wrap %v", err, boom)
	}
}

// An unknown user must cost a bcrypt comparison at the highest cost in the
// file, so response time does not tell who exists.
func TestUsersDummyHashMatchesTheCostliestUser(t *testing.T) {
	h5 := cheapHash(t, "a")
	h6, err := bcrypt.GenerateFromPassword([]byte("b"), bcrypt.MinCost+2)
	if err != nil {
		t.Fatal(err)
	}
	users := mustLoadUsers(t, "a:"+h5+"\nb:"+string(h6)+"\n")
	cost, err := bcrypt.Cost(users.set.Load().dummy)
	if err != nil {
		t.Fatalf("dummy hash is not a bcrypt hash: %v", err)
	}
	if cost != bcrypt.MinCost+2 {
		t.Errorf("dummy hash cost: got %d, want %d", cost, bcrypt.MinCost+2)
	}
	for _, pw := range []string{"", "a", "b"} {
		if users.Check("nobody", pw) {
			t.Errorf("Check(nobody, %q) = true", pw)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("s3cret password")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("cost of %q: got %d, %v; want %d", h, cost, err, bcrypt.DefaultCost)
	}
	users := mustLoadUsers(t, "u1:"+h+"\n")
	if !users.Check("u1", "s3cret password") {
		t.Error("a hash from HashPassword does not check against its password")
	}
	for _, tc := range []struct{ name, pw string }{
		{"empty password is refused", ""},
		{"password over 72 bytes is refused", strings.Repeat("x", MaxPasswordBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := HashPassword(tc.pw); err == nil {
				t.Errorf("HashPassword: got %q, want an error", h)
			}
		})
	}
}
