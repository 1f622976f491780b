package canary

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-rollouts/metricproviders/prometheus"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	log "github.com/sirupsen/logrus"
	_ "modernc.org/sqlite"
	"sigs.k8s.io/yaml"
)

// templateFile is the AnalysisTemplate under test, as the canary component
// ships it.
const templateFile = "../k8s/components/canary/analysis.yaml"

// canaryHash stands for the canary ReplicaSet's rollouts-pod-template-hash:
// the Prometheus Operator copies that pod label onto every series scraped
// from the pod (the ServiceMonitor's podTargetLabels); here the scrape
// configuration adds it.
const canaryHash = "6d9f7c5b8"

// testWindow replaces the template's 2m window so that a test takes
// seconds: Prometheus scrapes every second here instead of 15 s.
const testWindow = "15s"

// need skips t when a tool is missing, or fails it under CI=true (where
// scripts/test.sh installed it).
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this test needs %s under CI=true: %v", what, err)
	}
	t.Skipf("no %s (scripts/test.sh installs it): %v", what, err)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs a command until the test ends, its output in a buffer that
// failures print.
func start(t *testing.T, name string, env []string, args ...string) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	return &out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ok(url string) bool {
	r, err := http.Get(url)
	if err != nil {
		return false
	}
	r.Body.Close()
	return r.StatusCode == 200
}

// stack is an orderflow (serve: the api and the processor in one process,
// on SQLite) and a Prometheus scraping it as the two jobs the template
// reads, orderflow-api and orderflow-processor.
type stack struct {
	api, prom, db string
}

var buildOrderflow = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orderflow-canary-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orderflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/orderflow")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/orderflow: %v\n%s", err, out)
	}
	return bin, nil
})

func startStack(t *testing.T) *stack {
	t.Helper()
	promBin, err := exec.LookPath("prometheus")
	need(t, "Debian's prometheus", err)
	bin, err := buildOrderflow()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &stack{db: filepath.Join(dir, "orderflow.db")}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.api = "http://" + apiAddr
	procAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, bin, []string{
		"ENV=local", "ORDERFLOW_DB=" + s.db, "ORDERFLOW_API_ADDR=" + apiAddr, "ORDERFLOW_PROCESSOR_ADDR=" + procAddr,
		"ORDERFLOW_PUBLIC_URL=" + s.api, "ORDERFLOW_RATE_LIMIT=100000",
		"ORDERFLOW_PAYMENT_LATENCY=0s", "ORDERFLOW_MAX_RECEIVES=1",
		"ORDERFLOW_REQUEST_TIMEOUT=3s", "OTEL_SDK_DISABLED=true",
	}, "serve")
	waitFor(t, "orderflow's /ready", 30*time.Second, func() bool { return ok(s.api + "/ready") })

	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.prom = "http://" + promAddr
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: orderflow-api
    static_configs: [{targets: [%q], labels: {rollouts_pod_template_hash: %q}}]
  - job_name: orderflow-processor
    static_configs: [{targets: [%q], labels: {rollouts_pod_template_hash: %q}}]
`, apiAddr, canaryHash, procAddr, canaryHash)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, promBin, nil, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	waitFor(t, "prometheus's /-/ready", 30*time.Second, func() bool { return ok(s.prom + "/-/ready") })
	return s
}

// load traffic: a client logs in and places orders of amount, then reads
// each back, until ctx ends. It returns how many answers it had by code.
func (s *stack) load(ctx context.Context, t *testing.T, amount func(i int) int) func() map[int]int {
	t.Helper()
	token := s.login(t)
	var mu sync.Mutex
	codes := map[int]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 20 * time.Second}
		for i := 0; ctx.Err() == nil; i++ {
			body := fmt.Sprintf(`{"amount":%d}`, amount(i))
			req, _ := http.NewRequestWithContext(ctx, "POST", s.api+"/orders", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d-%d", time.Now().UnixNano(), i))
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			var o struct {
				OrderID string `json:"order_id"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&o)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
			if o.OrderID != "" {
				req, _ := http.NewRequestWithContext(ctx, "GET", s.api+"/orders/"+o.OrderID, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			time.Sleep(20 * time.Millisecond) // a client's pace, not a synchronisation
		}
	}()
	return func() map[int]int {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return codes
	}
}

func (s *stack) login(t *testing.T) string {
	t.Helper()
	resp, err := http.Post(s.api+"/login", "application/json", strings.NewReader(`{"user_id":"canary"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || l.AccessToken == "" {
		t.Fatalf("login: %v %v", resp.Status, err)
	}
	return l.AccessToken
}

// template reads the AnalysisTemplate and fills in its arguments: the
// canary's hash, this Prometheus and the test's window.
func (s *stack) template(t *testing.T) ([]v1alpha1.Metric, []v1alpha1.Argument) {
	t.Helper()
	b, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	var at v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(b, &at); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	if err := analysisutil.ValidateMetrics(at.Spec.Metrics); err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	values := map[string]string{"canary-hash": canaryHash, "prometheus": s.prom, "window": testWindow}
	var args []v1alpha1.Argument
	for _, a := range at.Spec.Args {
		v, ok := values[a.Name]
		if !ok {
			t.Fatalf("%s: argument %s, which this test does not fill in", templateFile, a.Name)
		}
		args = append(args, v1alpha1.Argument{Name: a.Name, Value: &v})
	}
	if err := analysisutil.ResolveArgs(args); err != nil {
		t.Fatal(err)
	}
	return at.Spec.Metrics, args
}

// measure takes one measurement of each metric through Argo Rollouts'
// Prometheus provider (which evaluates it with utils/evaluate), and
// returns the phases by metric.
func measure(t *testing.T, metrics []v1alpha1.Metric, args []v1alpha1.Argument) map[string]v1alpha1.Measurement {
	t.Helper()
	out := map[string]v1alpha1.Measurement{}
	for _, m := range metrics {
		resolved, err := analysisutil.ResolveMetricArgs(m, args)
		if err != nil {
			t.Fatalf("metric %s: %v", m.Name, err)
		}
		api, err := prometheus.NewPrometheusAPI(*resolved)
		if err != nil {
			t.Fatalf("metric %s: %v", m.Name, err)
		}
		p, err := prometheus.NewPrometheusProvider(api, *log.NewEntry(log.New()), *resolved)
		if err != nil {
			t.Fatalf("metric %s: %v", m.Name, err)
		}
		out[m.Name] = p.Run(&v1alpha1.AnalysisRun{}, *resolved)
	}
	return out
}

// analyse runs the analysis as the AnalysisRun controller does, with the
// template's count and failureLimit (its interval scaled down to a
// second, as the window is): a metric fails once its failed measurements
// exceed failureLimit, errs after consecutiveErrorLimit (4 by default)
// errors in a row, and succeeds after count measurements otherwise; the
// run takes the worst phase of its metrics.
func analyse(t *testing.T, s *stack) (v1alpha1.AnalysisPhase, map[string]v1alpha1.AnalysisPhase) {
	t.Helper()
	metrics, args := s.template(t)
	phases := map[string]v1alpha1.AnalysisPhase{}
	failed, errs := map[string]int{}, map[string]int{}
	count := 0
	for _, m := range metrics {
		if c := m.Count.IntValue(); c > count {
			count = c
		}
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			time.Sleep(time.Second) // the analysis's interval, scaled down
		}
		for name, ms := range measure(t, metrics, args) {
			if phases[name] != "" {
				continue
			}
			t.Logf("measurement %d of %s: %s %s %s", i+1, name, ms.Phase, ms.Value, ms.Message)
			var m v1alpha1.Metric
			for _, mm := range metrics {
				if mm.Name == name {
					m = mm
				}
			}
			switch ms.Phase {
			case v1alpha1.AnalysisPhaseFailed:
				failed[name]++
				errs[name] = 0
				if failed[name] > int(m.FailureLimit.IntVal) {
					phases[name] = v1alpha1.AnalysisPhaseFailed
				}
			case v1alpha1.AnalysisPhaseError:
				errs[name]++
				limit := 4
				if m.ConsecutiveErrorLimit != nil {
					limit = m.ConsecutiveErrorLimit.IntValue()
				}
				if errs[name] > limit {
					phases[name] = v1alpha1.AnalysisPhaseError
				}
			case v1alpha1.AnalysisPhaseInconclusive:
				phases[name] = v1alpha1.AnalysisPhaseInconclusive
			default:
				errs[name] = 0
			}
			if phases[name] == "" && i+1 == m.Count.IntValue() {
				phases[name] = v1alpha1.AnalysisPhaseSuccessful
			}
		}
	}
	run := v1alpha1.AnalysisPhaseSuccessful
	for _, p := range phases {
		if p == v1alpha1.AnalysisPhaseFailed || p == v1alpha1.AnalysisPhaseError ||
			(p == v1alpha1.AnalysisPhaseInconclusive && run == v1alpha1.AnalysisPhaseSuccessful) {
			run = p
		}
	}
	return run, phases
}

// query asks Prometheus for one value.
func (s *stack) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(s.prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
	return f, err == nil
}

// waitWindow waits until Prometheus holds a whole window of the traffic
// that began at since: rate() over the window then reads it alone.
func (s *stack) waitWindow(t *testing.T, since time.Time) {
	t.Helper()
	w, _ := time.ParseDuration(testWindow)
	waitFor(t, "a window of scrapes", 2*w+30*time.Second, func() bool {
		ts, ok := s.query(t, `timestamp(up{job="orderflow-api"})`)
		return ok && ts >= float64(since.Add(w+2*time.Second).Unix())
	})
}

// storeOutage holds the SQLite database's write lock until the test ends
// or release is called: every write of the api and the processor waits on
// it, then fails; for hold > 0 it takes the lock for hold, lets go for a
// moment, and again (slow writes that succeed).
func storeOutage(ctx context.Context, t *testing.T, path string, hold time.Duration) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lock := func() (*sql.Conn, error) {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.ExecContext(ctx, "PRAGMA busy_timeout = 10000"); err != nil {
			c.Close()
			return nil, err
		}
		if _, err := c.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	go func() {
		for ctx.Err() == nil {
			c, err := lock()
			if err != nil {
				continue
			}
			if hold == 0 {
				<-ctx.Done()
			} else {
				select {
				case <-ctx.Done():
				case <-time.After(hold):
				}
			}
			_, _ = c.ExecContext(context.Background(), "ROLLBACK")
			c.Close()
			time.Sleep(50 * time.Millisecond) // the writers' moment between two holds
		}
	}()
}

// now is Prometheus's clock (the scrape timestamps), for waitWindow.
func (s *stack) now(t *testing.T) time.Time {
	t.Helper()
	var ts float64
	waitFor(t, "a first scrape", 30*time.Second, func() bool {
		var ok bool
		ts, ok = s.query(t, `timestamp(up{job="orderflow-api"})`)
		return ok
	})
	return time.Unix(int64(ts), 0)
}
