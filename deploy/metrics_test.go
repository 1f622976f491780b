package deploy

import (
	"bufio"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promqlWords are PromQL's keywords, aggregation operators and functions
// that may stand without parentheses.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

var (
	promqlString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
)

// metricNames returns the metric names an expression selects: identifiers
// that are not functions, keywords, label names or numbers.
func metricNames(expr string) []string {
	e := promqlString.ReplaceAllString(expr, `""`)
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRange.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	// Grafana's variables ($env, $__rate_interval) are not metrics.
	e = regexp.MustCompile(`\$\{?[A-Za-z_]\w*\}?`).ReplaceAllString(e, " ")
	var out []string
	for _, m := range promqlIdent.FindAllStringSubmatchIndex(e, -1) {
		word := e[m[0]:m[1]]
		if m[2] >= 0 { // followed by "(": a function or aggregation
			continue
		}
		if m[0] > 0 && (e[m[0]-1] >= '0' && e[m[0]-1] <= '9' || e[m[0]-1] == '.') { // 1e3, 5m
			continue
		}
		if promqlWords[strings.ToLower(word)] {
			continue
		}
		out = append(out, word)
	}
	return out
}

func TestMetricNamesParsesPromQL(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`rate(orders_processed_total{status="error"}[5m]) > 0`, "orders_processed_total"},
		{`histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 1`, "http_request_duration_seconds_bucket"},
		{`max(queue_messages{queue="main"}) > 100 and max(deriv(queue_messages{queue="main"}[10m])) > 0`, "queue_messages queue_messages"},
		{`up{job="orderflow-processor"} == 1 unless on (instance) queue_messages{queue="main"}`, "up queue_messages"},
		{`sum by (service) (rate(aws_requests_total[$__rate_interval])) / ignoring (service) group_left () sum(rate(orders_processed_total{env=~"$env"}[$__rate_interval]))`, "aws_requests_total orders_processed_total"},
		{`label_values(orders_processed_total, env)`, "orders_processed_total env"},
		{`1e3 * x offset 5m`, "x"},
	} {
		if got := strings.Join(metricNames(c.expr), " "); got != c.want {
			t.Errorf("metricNames(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

// usedMetrics returns every metric name the alert rules and the
// dashboard use, with where each is used.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/prometheus/alerts.yml"), &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, n := range metricNames(r.Expr) {
				used[n] = append(used[n], "alert "+r.Alert)
			}
		}
	}
	d := loadDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, n := range metricNames(tg.Expr) {
				used[n] = append(used[n], "panel "+p.Title)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			// label_values(metric, label): the first argument is the metric.
			args := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			metric, _, _ := strings.Cut(args, ",")
			used[strings.TrimSpace(metric)] = append(used[strings.TrimSpace(metric)], "variable "+v.Name)
		}
	}
	if len(used) < 8 {
		t.Fatalf("found %d metric names in the rules and dashboard: %v", len(used), used)
	}
	return used
}

// scrapeBody returns a /metrics page.
func scrapeBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, b)
	}
	return string(b)
}

// scrape returns the sample names (histograms as _bucket, _sum, _count)
// a /metrics endpoint exports, with one sample line of each.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	names := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if _, ok := names[name]; !ok {
			names[name] = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// prometheusGenerated are series Prometheus makes itself for each target.
var prometheusGenerated = map[string]bool{"up": true}

// awsOnly are metrics only the AWS mode exports.
var awsOnly = map[string]bool{"aws_requests_total": true}

// The embedded mode, split in api and processor as compose runs them,
// exports every metric the rules and dashboard use (but the AWS ones,
// checked against the AWS mode on moto in TestSmokeAWSModeOnMoto).
func TestRulesAndDashboardUseOnlyExportedMetrics(t *testing.T) {
	api := startOrderflow(t, nil, "api")
	// The processor replicates the file, so that the replica's metrics are there too.
	proc := startOrderflow(t, map[string]string{"ORDERFLOW_DB": api.dbPath(), "ORDERFLOW_REPLICA_URL": "file://" + t.TempDir()}, "processor")
	// Orders through, so that every vector has a series: one that passes
	// at once, one whose payment fails twice first (processor_retries_total).
	for _, amount := range []string{"999", "1003"} {
		if out, code := runScript(t, []string{"SMOKE_AMOUNT=" + amount}, "smoke.sh", api.api, proc.processor); code != 0 {
			t.Fatalf("smoke.sh with amount %s exited %d:\n%s\napi:\n%s\nprocessor:\n%s", amount, code, out, api.out, proc.out)
		}
	}
	apiNames, procNames := scrape(t, api.api+"/metrics"), scrape(t, proc.processor+"/metrics")
	// Where each metric must come from, for the jobs of prometheus.yml.
	for _, n := range []string{"http_requests_total", "http_request_duration_seconds_bucket", "orders_accepted_total"} {
		if _, ok := apiNames[n]; !ok {
			t.Errorf("the api does not export %s", n)
		}
	}
	for _, n := range []string{"orders_processed_total", "order_processing_duration_seconds_bucket", "queue_messages", "orderflow_replica_lag_seconds", "orderflow_replica_errors_total"} {
		if _, ok := procNames[n]; !ok {
			t.Errorf("the processor does not export %s", n)
		}
	}
	if line := procNames["orders_processed_total"]; !strings.Contains(line, `env="local"`) {
		t.Errorf("orders_processed_total has no env label: %s", line)
	}
	used := usedMetrics(t)
	var checked []string
	for name, where := range used {
		_, inAPI := apiNames[name]
		_, inProc := procNames[name]
		switch {
		case inAPI || inProc || prometheusGenerated[name]:
			checked = append(checked, name)
		case awsOnly[name]:
			// Checked against the AWS mode in TestSmokeAWSModeOnMoto.
		default:
			t.Errorf("%s (used by %s) is exported by neither the api nor the processor", name, strings.Join(where, ", "))
		}
	}
	sort.Strings(checked)
	t.Logf("exported and used: %v", checked)
}
