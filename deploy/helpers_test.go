package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderflow/orderflow/logtest"
)

// root is the module's root directory, relative to this package.
const root = ".."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orderflow-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// orderflowBinary builds ./cmd/orderflow once per test binary, as the
// Dockerfile does, and returns its path.
func orderflowBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "orderflow")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binPath, "./cmd/orderflow")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/orderflow: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// readFile returns a file of the module, by its path from the root.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appSettings returns the program's settings and their defaults ("" for
// none) from docs/configuration.md's settings table, which cmd/orderflow's
// TestConfigurationDocListsEverySetting keeps equal to the program's own list.
func appSettings(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			continue
		}
		name := strings.Trim(strings.TrimPrefix(cells[0], "| "), "`")
		def := cells[1]
		switch {
		case def == "—":
			def = ""
		case strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`"):
			def = strings.Trim(def, "`")
		}
		settings[name] = def
	}
	if len(settings) < 20 {
		t.Fatalf("found %d settings in docs/configuration.md's table, want the whole list", len(settings))
	}
	return settings
}

// subcommands runs `orderflow help` and returns the commands it lists.
func subcommands(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(orderflowBinary(t), "help").Output()
	if err != nil {
		t.Fatalf("orderflow help: %v", err)
	}
	cmds := map[string]bool{}
	inList := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "commands:") {
			inList = true
			continue
		}
		if inList && strings.HasPrefix(line, "  ") {
			if f := strings.Fields(line); len(f) > 0 {
				cmds[f[0]] = true
			}
		}
	}
	if !cmds["api"] || !cmds["processor"] {
		t.Fatalf("orderflow help lists %v, want at least api and processor:\n%s", cmds, out)
	}
	return cmds
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running orderflow started by startOrderflow.
type process struct {
	api, processor string // base URLs
	env            map[string]string
	out            *logtest.Buffer
}

// dbPath is the SQLite file of an embedded-mode process.
func (p *process) dbPath() string { return p.env["ORDERFLOW_DB"] }

// startOrderflow runs the built binary with args and env (on top of a
// minimal environment), waits for the readiness of what it serves, and
// stops it with SIGTERM when the test ends, expecting a clean exit.
func startOrderflow(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	p := &process{out: &logtest.Buffer{}}
	full := map[string]string{
		"PATH":                      os.Getenv("PATH"),
		"HOME":                      os.Getenv("HOME"),
		"ENV":                       "local",
		"ORDERFLOW_DB":              filepath.Join(t.TempDir(), "orderflow.db"),
		"ORDERFLOW_LOG_LEVEL":       "warn",
		"ORDERFLOW_PAYMENT_LATENCY": "1ms",
		"ORDERFLOW_API_ADDR":        freeAddr(t),
		"ORDERFLOW_PROCESSOR_ADDR":  freeAddr(t),
	}
	for k, v := range env {
		full[k] = v
	}
	p.env = full
	p.api = "http://" + full["ORDERFLOW_API_ADDR"]
	p.processor = "http://" + full["ORDERFLOW_PROCESSOR_ADDR"]
	cmd := exec.Command(orderflowBinary(t), args...)
	for k, v := range full {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("orderflow %v exited with %v\n%s", args, err, p.out)
			}
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("orderflow %v did not stop within 40s of SIGINT\n%s", args, p.out)
		}
	})
	role := "serve"
	if len(args) > 0 {
		role = args[0]
	}
	if role != "processor" {
		waitReady(t, p.api+"/ready", done, p.out)
	}
	if role != "api" {
		waitReady(t, p.processor+"/ready", done, p.out)
	}
	return p
}

func waitReady(t *testing.T, url string, done chan error, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("orderflow stopped before %s was ready: %v\n%s", url, err, out)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 30s\n%s", url, out)
}

// runScript runs a script of scripts/ with bash and env added to the
// test's environment, and returns its combined output and exit code.
func runScript(t *testing.T, env []string, script string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(root, "scripts", script)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within 3 minutes:\n%s", script, args, out)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", script, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// envRef matches compose's ${NAME}, ${NAME:-default} and ${NAME-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate resolves compose variables to their defaults, as compose
// does when they are not set.
func interpolate(s string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		return envRef.FindStringSubmatch(m)[2]
	})
}
