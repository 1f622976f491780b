package main

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	secretOld = "k1:rotation-test-old-secret-0123456789abcdef"
	secretNew = "k2:rotation-test-new-secret-0123456789abcdef"
	urlKeyOld = "u1:rotation-test-old-url-key-0123456789abcdef"
	urlKeyNew = "u2:rotation-test-new-url-key-0123456789abcdef"
)

// replaceFile writes content to path as Vault Agent and the kubelet do: a
// new file renamed over the old one.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tokenKID returns the kid header of a JWT.
func tokenKID(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		KID string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("token header %q: %v", head, err)
	}
	return h.KID
}

// waitFor polls cond until it holds, for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The api follows its secret files: a new key id added in front signs the
// tokens and status URLs issued from then on while the old one keeps
// verifying; once removed, the old key verifies nothing. Content that is
// not a keyring (a file caught half-written) is refused and the keys in
// force stay.
func TestTheAPIAppliesRotatedSecretFilesWithoutARestart(t *testing.T) {
	dir := t.TempDir()
	jwtFile, urlFile := filepath.Join(dir, "jwt"), filepath.Join(dir, "url-signing-key")
	replaceFile(t, jwtFile, secretOld)
	replaceFile(t, urlFile, urlKeyOld)
	in := startRun(t, testEnv(t, map[string]string{"JWT_SECRET_FILE": jwtFile, "ORDERFLOW_URL_SIGNING_KEY_FILE": urlFile, "ORDERFLOW_LOGIN_RATE_LIMIT": "100000"}))
	oldToken := login(t, in.api, "rota")
	var a accepted
	if resp := call(t, "POST", in.api+"/orders", oldToken, map[string]any{"amount": 100}, &a); resp.StatusCode != 202 {
		t.Fatalf("create: got %d", resp.StatusCode)
	}
	oldURL := a.StatusURL
	urlKID := func(u string) string { p, _ := url.Parse(u); return p.Query().Get("kid") }
	if tokenKID(t, oldToken) != "k1" || urlKID(oldURL) != "u1" {
		t.Fatalf("before the rotation: token kid %q, URL kid %q; want k1, u1", tokenKID(t, oldToken), urlKID(oldURL))
	}

	replaceFile(t, jwtFile, secretNew+","+secretOld)
	replaceFile(t, urlFile, urlKeyNew+","+urlKeyOld)
	waitFor(t, "new tokens signed by k2", func() bool { return tokenKID(t, login(t, in.api, "rota")) == "k2" })
	newToken := login(t, in.api, "rota")
	waitFor(t, "new status URLs signed by u2", func() bool {
		var b accepted
		call(t, "POST", in.api+"/orders", newToken, map[string]any{"amount": 100}, &b)
		return urlKID(b.StatusURL) == "u2"
	})
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if resp := call(t, "GET", in.api+"/orders", tok, nil, nil); resp.StatusCode != 200 {
			t.Errorf("%s token while both keys are in the file: got %d, want 200", name, resp.StatusCode)
		}
	}
	if resp := call(t, "GET", oldURL, "", nil, nil); resp.StatusCode != 200 {
		t.Errorf("old status URL while both keys are in the file: got %d, want 200", resp.StatusCode)
	}

	// Half-written: in place, not a keyring. Refused; k2 goes on signing.
	if err := os.WriteFile(jwtFile, []byte("k3:short"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the half-written file refused", func() bool {
		return strings.Contains(in.out.String(), "secret file changed but is refused")
	})
	if kid := tokenKID(t, login(t, in.api, "rota")); kid != "k2" {
		t.Errorf("after a half-written file: tokens signed by %q, want k2 still", kid)
	}

	replaceFile(t, jwtFile, secretNew)
	replaceFile(t, urlFile, urlKeyNew)
	waitFor(t, "the old token refused once k1 is removed", func() bool {
		return call(t, "GET", in.api+"/orders", oldToken, nil, nil).StatusCode == 401
	})
	waitFor(t, "the old status URL refused once u1 is removed", func() bool {
		return call(t, "GET", oldURL, "", nil, nil).StatusCode == 403
	})
	if resp := call(t, "GET", in.api+"/orders", newToken, nil, nil); resp.StatusCode != 200 {
		t.Errorf("k2's token after k1 is removed: got %d, want 200", resp.StatusCode)
	}
}
