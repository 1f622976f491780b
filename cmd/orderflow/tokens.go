package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// tokenStore keeps the client's bearer tokens in dir/tokens.json, one per
// api URL, so that two servers' tokens never mix. The directory is 0700
// and the file 0600: a token is a credential.
type tokenStore struct{ dir string }

// storedToken is one server's login.
type storedToken struct {
	User        string    `json:"user"`
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s tokenStore) path() string { return filepath.Join(s.dir, "tokens.json") }

func (s tokenStore) read() (map[string]storedToken, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]storedToken{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]storedToken{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); delete it and run orderflow login", s.path(), err)
	}
	return m, nil
}

// save records server's token, replacing the file atomically.
func (s tokenStore) save(server string, t storedToken) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return err
	}
	m, err := s.read()
	if err != nil {
		return err
	}
	m[server] = t
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "tokens-*.json") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.path())
}

// load returns the token for server, with an error that says what to do
// when there is none or it has expired.
func (s tokenStore) load(server string, now time.Time) (storedToken, error) {
	m, err := s.read()
	if err != nil {
		return storedToken{}, err
	}
	t, ok := m[server]
	switch {
	case !ok || t.AccessToken == "":
		return storedToken{}, fmt.Errorf("not logged in to %s: run orderflow login --user U", server)
	case !now.Before(t.ExpiresAt):
		return storedToken{}, fmt.Errorf("the token of %s for %s expired at %s: run orderflow login --user %s",
			t.User, server, t.ExpiresAt.UTC().Format(time.RFC3339), t.User)
	}
	return t, nil
}
