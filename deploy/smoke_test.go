package deploy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSmokePassesAgainstTheEmbeddedMode(t *testing.T) {
	p := startOrderflow(t, nil, "serve")
	out, code := runScript(t, nil, "smoke.sh", p.api, p.processor)
	if code != 0 || !strings.Contains(out, "smoke: all checks passed") {
		t.Fatalf("smoke.sh exited %d:\n%s\norderflow:\n%s", code, out, p.out)
	}
	for _, step := range []string{"api health", "login", "create order", "poll status URL", "processor health", "processor metrics after", "docs"} {
		if !strings.Contains(out, "smoke: ok   "+step) {
			t.Errorf("smoke.sh did not report step %q:\n%s", step, out)
		}
	}
}

// pathWithout makes a directory of links to the given tools, to run a
// script on a PATH that has only them (bash is run by its full path).
func pathWithout(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed", tool)
		}
		if tool == "python3" {
			// Resolve shims (pyenv) to the interpreter itself.
			out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
			if err != nil {
				t.Fatal(err)
			}
			p = strings.TrimSpace(string(out))
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var smokeTools = []string{"curl", "awk", "sed", "head", "grep", "mktemp", "rm", "sleep"}

func TestSmokeReadsJSONWithPython3WhenJqIsMissing(t *testing.T) {
	p := startOrderflow(t, nil, "serve")
	dir := pathWithout(t, append(smokeTools, "python3")...)
	out, code := runScript(t, []string{"PATH=" + dir}, "smoke.sh", p.api, p.processor)
	if code != 0 || !strings.Contains(out, "smoke: all checks passed") {
		t.Fatalf("smoke.sh with python3 only exited %d:\n%s", code, out)
	}
}

func TestSmokeFailsAtTheFirstBrokenStepWithAClearMessage(t *testing.T) {
	p := startOrderflow(t, nil, "serve")
	closed := "http://" + freeAddr(t)
	noJSON := pathWithout(t, smokeTools...)
	for _, c := range []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     string
	}{
		{"an unreachable api fails the first step", nil, []string{closed, p.processor}, 1,
			"smoke: FAIL api health: GET " + closed + "/health: no answer"},
		{"an unreachable processor fails before any order is made", nil, []string{p.api, closed}, 1,
			"smoke: FAIL processor metrics before: GET " + closed + "/metrics: no answer"},
		{"a declined payment fails the poll with the order's reason", []string{"SMOKE_AMOUNT=1002"}, []string{p.api, p.processor}, 1,
			"ended REJECTED"},
		{"an invalid user fails the login with the api's answer", []string{"SMOKE_USER=bad user"}, []string{p.api, p.processor}, 1,
			"smoke: FAIL login: POST " + p.api + "/login answered 422, want 200"},
		{"without jq and python3 it says what to install", []string{"PATH=" + noJSON}, []string{p.api, p.processor}, 1,
			"smoke: FAIL start: needs jq or python3"},
		{"three arguments are a usage error", nil, []string{p.api, p.processor, "extra"}, 2,
			"Smoke test of a running orderflow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runScript(t, c.env, "smoke.sh", c.args...)
			if code != c.wantCode || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d with %q; output:\n%s", code, c.wantCode, c.want, out)
			}
			if c.wantCode == 1 && strings.Contains(out, "all checks passed") {
				t.Errorf("a failing run says it passed:\n%s", out)
			}
		})
	}
}

// listening reports whether something accepts connections on addr.
func listening(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestQuickstartStartsTheEmbeddedModeWithoutDocker(t *testing.T) {
	bin := orderflowBinary(t)
	// A docker that does not answer, as on a machine without an engine.
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "docker"), []byte("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	apiAddr, procAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"PATH=" + fake + string(os.PathListSeparator) + os.Getenv("PATH"),
		"QUICKSTART_BIN=" + bin,
		"QUICKSTART_DIR=" + t.TempDir(),
		"ORDERFLOW_API_ADDR=" + apiAddr,
		"ORDERFLOW_PROCESSOR_ADDR=" + procAddr,
		"ORDERFLOW_LOG_LEVEL=warn",
	}
	t.Cleanup(func() { runScript(t, env, "quickstart.sh", "--down") })
	out, code := runScript(t, env, "quickstart.sh")
	if code != 0 {
		t.Fatalf("quickstart.sh exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "quickstart: Docker is not running: starting the embedded mode") {
		t.Errorf("quickstart.sh does not say which mode it chose:\n%s", out)
	}
	if out, code := runScript(t, nil, "smoke.sh", "http://"+apiAddr, "http://"+procAddr); code != 0 {
		t.Fatalf("smoke.sh after quickstart exited %d:\n%s", code, out)
	}
	out, code = runScript(t, env, "quickstart.sh", "--down")
	if code != 0 || !strings.Contains(out, "stopped orderflow") {
		t.Fatalf("quickstart.sh --down exited %d:\n%s", code, out)
	}
	if listening(apiAddr) || listening(procAddr) {
		t.Errorf("orderflow still listens after quickstart.sh --down")
	}
}

func TestQuickstartRefusesComposeWithoutDocker(t *testing.T) {
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "docker"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := runScript(t, []string{"PATH=" + fake + string(os.PathListSeparator) + os.Getenv("PATH"), "QUICKSTART_DIR=" + t.TempDir()},
		"quickstart.sh", "--compose")
	if code != 1 || !strings.Contains(out, "--compose needs a running Docker engine") {
		t.Errorf("exit %d, want 1 with a message about Docker:\n%s", code, out)
	}
}

// motoServer returns a moto_server to run, as quickstart.sh finds one.
func motoServer(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ORDERFLOW_MOTO_SERVER"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	if p := filepath.Join(home, ".cache/orderflow/moto-5.2.5/bin/moto_server"); fileExists(p) {
		return p
	}
	return needTool(t, "moto_server")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestQuickstartAWSMotoRunsInitAndTheAWSMode(t *testing.T) {
	moto := motoServer(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	apiAddr, procAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"ORDERFLOW_MOTO_SERVER=" + moto,
		"MOTO_PORT=" + port,
		"QUICKSTART_BIN=" + orderflowBinary(t),
		"QUICKSTART_DIR=" + t.TempDir(),
		"ORDERFLOW_API_ADDR=" + apiAddr,
		"ORDERFLOW_PROCESSOR_ADDR=" + procAddr,
		"ORDERFLOW_LOG_LEVEL=warn",
	}
	t.Cleanup(func() { runScript(t, env, "quickstart.sh", "--down") })
	out, code := runScript(t, env, "quickstart.sh", "--aws-moto")
	if code != 0 {
		t.Fatalf("quickstart.sh --aws-moto exited %d:\n%s", code, out)
	}
	for _, want := range []string{"starting the AWS mode on a local moto_server (127.0.0.1:" + port + ")", "created SQS_QUEUE_URL=http://127.0.0.1:" + port + "/", "quickstart: ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart.sh --aws-moto does not say %q:\n%s", want, out)
		}
	}
	if out, code := runScript(t, nil, "smoke.sh", "http://"+apiAddr, "http://"+procAddr); code != 0 {
		t.Fatalf("smoke.sh after quickstart --aws-moto exited %d:\n%s", code, out)
	}
	if metrics := scrapeBody(t, "http://"+procAddr+"/metrics"); !strings.Contains(metrics, `aws_requests_total{`) {
		t.Errorf("the processor counts no AWS requests: not in the AWS mode")
	}
	out, code = runScript(t, env, "quickstart.sh", "--down")
	if code != 0 || !strings.Contains(out, "stopped orderflow") || !strings.Contains(out, "stopped moto") {
		t.Fatalf("quickstart.sh --down exited %d:\n%s", code, out)
	}
	if listening(apiAddr) || listening("127.0.0.1:"+port) {
		t.Errorf("orderflow or moto_server still listens after quickstart.sh --down")
	}
}
