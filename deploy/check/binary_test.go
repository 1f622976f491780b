package check

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is what the orderflow binary says about itself: its commands and
// its settings (name → default), and which settings are secrets read also
// from NAME_FILE.
type binary struct {
	path     string
	commands map[string]bool
	settings map[string]string
	secrets  map[string]bool
}

// buildBinary builds ../../cmd/orderflow (the root module) once and asks it.
var buildBinary = sync.OnceValues(func() (*binary, error) {
	dir, err := os.MkdirTemp("", "orderflow-check-")
	if err != nil {
		return nil, err
	}
	b := &binary{path: filepath.Join(dir, "orderflow"), commands: map[string]bool{}, settings: map[string]string{}, secrets: map[string]bool{}}
	cmd := exec.Command("go", "build", "-o", b.path, "./cmd/orderflow")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/orderflow: %v\n%s", err, out)
	}
	help, err := exec.Command(b.path, "help").Output()
	if err != nil {
		return nil, fmt.Errorf("orderflow help: %v", err)
	}
	in := false
	for _, line := range strings.Split(string(help), "\n") {
		if line == "commands:" {
			in = true
		} else if in && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") {
			b.commands[strings.Fields(line)[0]] = true
		} else if line == "" {
			in = false
		}
	}
	out, err := exec.Command(b.path, "help", "settings").Output()
	if err != nil {
		return nil, fmt.Errorf("orderflow help settings: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("orderflow help settings: line %q is not name, default, help", sc.Text())
		}
		b.settings[f[0]] = f[1]
		if strings.Contains(f[2], "Also "+f[0]+"_FILE") {
			b.secrets[f[0]] = true
		}
	}
	if !b.commands["api"] || !b.commands["processor"] || !b.secrets["JWT_SECRET"] {
		return nil, fmt.Errorf("orderflow lists commands %v and secrets %v, want api, processor and JWT_SECRET", b.commands, b.secrets)
	}
	return b, nil
})

// roles are the Deployments: the command each runs and the setting whose
// address it listens on.
var roles = map[string]struct{ cmd, addr string }{
	"orderflow-api":       {"api", "ORDERFLOW_API_ADDR"},
	"orderflow-processor": {"processor", "ORDERFLOW_PROCESSOR_ADDR"},
}

// index maps kind → name → object.
func index(objs []object) map[string]map[string]map[string]any {
	out := map[string]map[string]map[string]any{}
	for _, o := range objs {
		if out[o.kind()] == nil {
			out[o.kind()] = map[string]map[string]any{}
		}
		out[o.kind()][o.name()] = o.m
	}
	return out
}

func list(v any) []any         { l, _ := v.([]any); return l }
func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// port returns the port number the setting addr defaults to.
func port(b *binary, addr string) int {
	d := b.settings[addr]
	p, _ := strconv.Atoi(d[strings.LastIndex(d, ":")+1:])
	return p
}

// crossProblems checks the objects of one overlay against the binary: the
// commands, settings, ports and probe paths the workloads use, and the
// numbers two objects must agree on.
func crossProblems(b *binary, objs []object) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	ix := index(objs)
	cm := ix["ConfigMap"]["orderflow-config"]
	data := map[string]string{}
	for k, v := range obj(cm["data"]) {
		data[k] = fmt.Sprint(v)
		if _, ok := b.settings[k]; !ok {
			bad("ConfigMap orderflow-config sets %s, which is no orderflow setting", k)
		}
	}
	setting := func(name string) string {
		if v, ok := data[name]; ok {
			return v
		}
		return b.settings[name]
	}
	for name, role := range roles {
		d := ix["Deployment"][name]
		if d == nil {
			bad("no Deployment %s", name)
			continue
		}
		cs := list(get(d, "spec", "template", "spec", "containers"))
		if len(cs) != 1 {
			bad("Deployment %s has %d containers, want 1", name, len(cs))
			continue
		}
		c := obj(cs[0])
		if args := list(c["args"]); len(args) != 1 || args[0] != role.cmd || !b.commands[role.cmd] || c["command"] != nil {
			bad("Deployment %s runs %v %v, want the image's entrypoint with [%s] (orderflow help lists %v)", name, c["command"], c["args"], role.cmd, b.commands)
		}
		for _, e := range list(c["env"]) {
			n := str(obj(e), "name")
			base, isFile := strings.CutSuffix(n, "_FILE")
			if _, ok := b.settings[n]; !ok && !(isFile && b.secrets[base]) {
				bad("Deployment %s sets %s, which is no orderflow setting nor the _FILE form of a secret one", name, n)
			}
			if n == role.addr {
				bad("Deployment %s overrides %s; its ports assume the default %s", name, n, b.settings[n])
			}
		}
		out = append(out, portProblems(b, ix, name, role.addr, c, d)...)
		out = append(out, vaultProblems(name, c, d)...)
	}
	out = append(out, agreementProblems(b, ix, setting)...)
	return out
}

// vaultDir is where the Vault Agent Injector renders secrets.
const vaultDir = "/vault/secrets/"

// vaultProblems checks that every secret file a container reads through a
// *_FILE setting is one the Vault Agent Injector renders into the pod (an
// agent-inject-secret annotation with a template), and that the agent
// renders nothing the container does not read.
func vaultProblems(name string, c, d map[string]any) []string {
	var out []string
	ann := obj(get(d, "spec", "template", "metadata", "annotations"))
	rendered := map[string]bool{}
	for k := range ann {
		if f, ok := strings.CutPrefix(k, "vault.hashicorp.com/agent-inject-secret-"); ok {
			rendered[f] = true
			if ann["vault.hashicorp.com/agent-inject-template-"+f] == nil {
				out = append(out, fmt.Sprintf("Deployment %s: Vault renders %s without a template (the raw secret as JSON, not what the app reads)", name, f))
			}
		}
	}
	read := map[string]bool{}
	for _, e := range list(c["env"]) {
		n, v := str(obj(e), "name"), str(obj(e), "value")
		if !strings.HasSuffix(n, "_FILE") {
			continue
		}
		f, ok := strings.CutPrefix(v, vaultDir)
		if !ok || !rendered[f] || ann["vault.hashicorp.com/agent-inject"] != "true" {
			out = append(out, fmt.Sprintf("Deployment %s reads %s=%s, which the Vault Agent does not render (it renders %v into %s)", name, n, v, rendered, vaultDir))
		}
		read[f] = true
	}
	for f := range rendered {
		if !read[f] {
			out = append(out, fmt.Sprintf("Deployment %s: Vault renders %s, which no setting reads", name, f))
		}
	}
	return out
}

// portProblems checks that the container port, probes, scrape annotations,
// Service and monitors of a Deployment all name the port the binary
// listens on and the paths it serves.
func portProblems(b *binary, ix map[string]map[string]map[string]any, name, addr string, c, d map[string]any) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	want := port(b, addr)
	ports := list(c["ports"])
	if len(ports) != 1 || get(ports[0], "containerPort") != int64(want) && get(ports[0], "containerPort") != want {
		bad("Deployment %s exposes ports %v, want only %d (%s's default %s)", name, ports, want, addr, b.settings[addr])
		return out
	}
	pname := str(obj(ports[0]), "name")
	isPort := func(v any) bool { return v == pname || fmt.Sprint(v) == strconv.Itoa(want) }
	for probe, path := range map[string]string{"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"} {
		g := obj(get(c, probe, "httpGet"))
		if g == nil || g["path"] != path || !isPort(g["port"]) {
			bad("Deployment %s %s is %v, want GET %s on port %d", name, probe, g, path, want)
		}
	}
	ann := obj(get(d, "spec", "template", "metadata", "annotations"))
	if ann["prometheus.io/port"] != strconv.Itoa(want) || ann["prometheus.io/path"] != "/metrics" {
		bad("Deployment %s scrape annotations %v, want port %d path /metrics", name, ann, want)
	}
	svc := ix["Service"][name]
	for _, p := range list(get(svc, "spec", "ports")) {
		if !isPort(get(p, "targetPort")) {
			bad("Service %s targets port %v, want %s (%d)", name, get(p, "targetPort"), pname, want)
		}
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor"} {
		m := ix[kind][name]
		if m == nil {
			continue
		}
		eps := list(get(m, "spec", "endpoints"))
		if kind == "PodMonitor" {
			eps = list(get(m, "spec", "podMetricsEndpoints"))
		}
		for _, e := range eps {
			port := str(obj(e), "port")
			if kind == "ServiceMonitor" && port != str(obj(list(get(svc, "spec", "ports"))[0]), "name") || kind == "PodMonitor" && port != pname || str(obj(e), "path") != "/metrics" {
				bad("%s %s scrapes port %q path %q, want the %s port and /metrics", kind, name, port, str(obj(e), "path"), name)
			}
		}
	}
	return out
}

// agreementProblems checks the numbers that two objects must agree on.
func agreementProblems(b *binary, ix map[string]map[string]map[string]any, setting func(string) string) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if so := ix["ScaledObject"]["orderflow-processor"]; so != nil {
		for _, tr := range list(get(so, "spec", "triggers")) {
			md := obj(get(tr, "metadata"))
			if md["queueLength"] != setting("ORDERFLOW_CONCURRENCY") {
				bad("ScaledObject queueLength %v, want ORDERFLOW_CONCURRENCY %s (the orders one pod works on at once)", md["queueLength"], setting("ORDERFLOW_CONCURRENCY"))
			}
			if md["queueURL"] != setting("SQS_QUEUE_URL") || md["awsRegion"] != setting("AWS_REGION") {
				bad("ScaledObject watches %v in %v, the processor works %s in %s", md["queueURL"], md["awsRegion"], setting("SQS_QUEUE_URL"), setting("AWS_REGION"))
			}
		}
	}
	if h := ix["HorizontalPodAutoscaler"]["orderflow-api"]; h != nil && fmt.Sprint(get(h, "spec", "maxReplicas")) != setting("ORDERFLOW_RATE_LIMIT_PROCESSES") {
		bad("api HPA maxReplicas %v, but ORDERFLOW_RATE_LIMIT_PROCESSES is %s (each pod's share of the rate limit while DynamoDB is down)", get(h, "spec", "maxReplicas"), setting("ORDERFLOW_RATE_LIMIT_PROCESSES"))
	}
	for _, ing := range ix["Ingress"] {
		for _, r := range list(get(ing, "spec", "rules")) {
			if u := "https://" + str(obj(r), "host"); setting("ORDERFLOW_PUBLIC_URL") != u {
				bad("Ingress serves %s but ORDERFLOW_PUBLIC_URL is %q: status URLs would name another host", u, setting("ORDERFLOW_PUBLIC_URL"))
			}
		}
	}
	if setting("ORDERFLOW_TRUSTED_PROXIES") == "" {
		bad("ORDERFLOW_TRUSTED_PROXIES is unset: behind the ingress controller every client would share its IP")
	}
	out = append(out, graceProblems(ix, setting)...)
	return out
}

// graceProblems checks that each shutdown fits its grace period: the
// processor's drain plus 10 s to flush; the api's preStop sleep, its
// shutdown delay and its 10 s to finish requests.
func graceProblems(ix map[string]map[string]map[string]any, setting func(string) string) []string {
	var out []string
	dur := func(name string) time.Duration { d, _ := time.ParseDuration(setting(name)); return d }
	need := map[string]time.Duration{
		"orderflow-processor": dur("ORDERFLOW_DRAIN_TIMEOUT") + 10*time.Second,
		"orderflow-api":       dur("ORDERFLOW_SHUTDOWN_DELAY") + 10*time.Second,
	}
	for name, want := range need {
		ps := obj(get(ix["Deployment"][name], "spec", "template", "spec"))
		c := obj(list(ps["containers"])[0])
		sleep, _ := strconv.Atoi(fmt.Sprint(get(c, "lifecycle", "preStop", "sleep", "seconds")))
		want += time.Duration(sleep) * time.Second
		g, _ := strconv.Atoi(fmt.Sprint(ps["terminationGracePeriodSeconds"]))
		if time.Duration(g)*time.Second < want {
			bad := fmt.Sprintf("Deployment %s terminationGracePeriodSeconds %d, want at least %v (preStop %ds and the app's shutdown)", name, g, want, sleep)
			out = append(out, bad)
		}
	}
	if c := obj(list(get(ix["Deployment"]["orderflow-api"], "spec", "template", "spec", "containers"))[0]); get(c, "lifecycle", "preStop", "sleep") == nil {
		out = append(out, "Deployment orderflow-api has no preStop sleep: the endpoint may still get requests after SIGTERM")
	}
	return out
}

// The manifests use the binary's commands, settings, ports and paths, and
// agree with each other where they must.
func TestManifestsMatchTheBinary(t *testing.T) {
	b, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range overlays {
		objs, err := build(k8sDir, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range crossProblems(b, objs) {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// The binary serves what the manifests probe and scrape: /health, /ready
// and /metrics on each role's port; given the memory limit the downward API
// passes, its soft memory limit is 3/4 of it (go_gc_gomemlimit_bytes) with
// GOGC 400; and the jobs the alert rules name are the monitors' job labels.
func TestTheBinaryServesTheProbedPaths(t *testing.T) {
	b, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addrs := map[string]string{"ORDERFLOW_API_ADDR": free(), "ORDERFLOW_PROCESSOR_ADDR": free()}
	cmd := exec.Command(b.path, "serve")
	const limit = 256 << 20 // the prod overlays' memory limit, 256Mi
	cmd.Env = []string{"ENV=test", "ORDERFLOW_DB=" + filepath.Join(t.TempDir(), "o.db"), "ORDERFLOW_LOG_LEVEL=warn", "HOME=" + t.TempDir(),
		"ORDERFLOW_MEMORY_LIMIT=" + strconv.Itoa(limit)}
	for k, v := range addrs {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	for _, addr := range addrs {
		for _, path := range []string{"/ready", "/health", "/metrics"} {
			body := waitOK(t, "http://"+addr+path, &logs)
			if path != "/metrics" {
				continue
			}
			for name, want := range map[string]float64{"go_gc_gomemlimit_bytes": limit / 4 * 3, "go_gc_gogc_percent": 400} {
				if got, ok := metricValue(body, name); !ok || got != want {
					t.Errorf("%s%s: %s = %v (found %v), want %v", addr, path, name, got, ok, want)
				}
			}
		}
	}
	alerts, err := os.ReadFile("../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`job="([^"]+)"`).FindAllStringSubmatch(string(alerts), -1) {
		if _, ok := roles[m[1]]; !ok {
			t.Errorf("alerts.yml names job %q; the ServiceMonitor and PodMonitor name their jobs %v (app.kubernetes.io/name)", m[1], roles)
		}
	}
}

// metricValue returns the value of an unlabelled sample in a Prometheus
// text exposition.
func metricValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitOK polls url until it answers 200 and returns the body.
func waitOK(t *testing.T, url string, logs fmt.Stringer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return buf.String()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 30s\n%s", url, logs)
	return ""
}
