package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/orderflow/orderflow/auth"
)

// secretPollInterval is how often the api reads its secret files again. A
// change is applied once two reads in a row agree, so a rotation written to
// the file is in force within two intervals.
const secretPollInterval = time.Second

// apiKeys are the api's secrets in force: each can be replaced while the
// api runs, when its file changes (Vault Agent re-renders it, Kubernetes
// updates a mounted Secret).
type apiKeys struct {
	tokens *auth.Tokens
	urls   *auth.URLSigner
	users  *auth.Users // nil with dev login
	// jwt and url are the keyrings in force, for the checks a new one
	// must pass against the other.
	jwt, url *auth.Keyring
}

// loadAPIKeys builds the api's keys from cfg, reading the users file.
func loadAPIKeys(cfg config) (*apiKeys, error) {
	k := &apiKeys{
		tokens: auth.NewTokens(cfg.JWTKeys, cfg.TokenTTL, time.Now),
		urls:   auth.NewURLSigner(cfg.URLKeys),
		jwt:    cfg.JWTKeys,
		url:    cfg.URLKeys,
	}
	if !cfg.DevLogin {
		b, err := os.ReadFile(cfg.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("ORDERFLOW_USERS_FILE: %w", err)
		}
		if k.users, err = auth.LoadUsers(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("ORDERFLOW_USERS_FILE %s: %w", cfg.UsersFile, err)
		}
	}
	return k, nil
}

// secretFile is one secret file the api follows.
type secretFile struct {
	setting string // the setting whose file it is, for logs
	path    string
	apply   func(content []byte) error // installs content, or refuses it

	applied  []byte // the content in force
	seen     []byte // what the last read found, when not yet applied
	rejected []byte // the content last refused, not retried until it changes
	readErr  string // the last read error, logged once
}

// files returns the secret files of cfg that k follows.
func (k *apiKeys) files(cfg config) []*secretFile {
	local := cfg.Env == "local" || cfg.Env == "dev" || cfg.Env == "test"
	var out []*secretFile
	keyring := func(setting, path, current string, set func(*auth.Keyring), other func() *auth.Keyring) {
		if path == "" {
			return
		}
		out = append(out, &secretFile{setting: setting, path: path, applied: []byte(current), apply: func(b []byte) error {
			kr, err := auth.ParseKeyring(string(b))
			if err != nil {
				return err
			}
			if !local {
				p := parser{}
				p.refuseBuiltInSecrets(setting, kr, cfg.Env)
				if kr.SharesSecretWith(other()) {
					p.fail(setting, "shares a secret with the other keyring")
				}
				if err := errors.Join(p.errs...); err != nil {
					return err
				}
			}
			set(kr)
			return nil
		}})
	}
	keyring("JWT_SECRET", cfg.JWTSecretFile, cfg.JWTSecret, func(kr *auth.Keyring) { k.jwt = kr; k.tokens.SetKeys(kr) }, func() *auth.Keyring { return k.url })
	keyring("ORDERFLOW_URL_SIGNING_KEY", cfg.URLSigningKeyFile, cfg.URLSigningKey, func(kr *auth.Keyring) { k.url = kr; k.urls.SetKeys(kr) }, func() *auth.Keyring { return k.jwt })
	if k.users != nil {
		current, _ := os.ReadFile(cfg.UsersFile)
		out = append(out, &secretFile{setting: "ORDERFLOW_USERS_FILE", path: cfg.UsersFile, applied: bytes.TrimSpace(current), apply: func(b []byte) error {
			u, err := auth.LoadUsers(bytes.NewReader(b))
			if err != nil {
				return err
			}
			k.users.Replace(u)
			return nil
		}})
	}
	return out
}

// watchSecretFiles reads files every interval until ctx ends, applying
// each change (see poll).
func watchSecretFiles(ctx context.Context, files []*secretFile, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, f := range files {
				f.poll(log)
			}
		}
	}
}

// poll reads the file and applies a change once two reads in a row found
// it: a file being written in place (not replaced by a rename, as Vault
// Agent and the kubelet do) is never taken half-written. Content that
// does not parse or is refused leaves the secret in force and is logged
// once.
func (f *secretFile) poll(log *slog.Logger) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		if err.Error() != f.readErr {
			f.readErr = err.Error()
			log.Warn("secret file unreadable; the secret in force stays", "setting", f.setting, "err", err)
		}
		return
	}
	f.readErr = ""
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, f.applied), bytes.Equal(b, f.rejected):
		f.seen = nil
		return
	case !bytes.Equal(b, f.seen):
		f.seen = b // changed since the last read: wait for it to settle
		return
	}
	f.seen = nil
	if err := f.apply(b); err != nil {
		f.rejected = b
		log.Warn("secret file changed but is refused; the secret in force stays", "setting", f.setting, "path", f.path, "err", err)
		return
	}
	f.applied, f.rejected = b, nil
	log.Info("secret file changed: applied", "setting", f.setting, "path", f.path)
}
