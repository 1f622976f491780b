package canary

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	"sigs.k8s.io/yaml"
)

// promtool parses and checks every query of the template, with the
// template's own default arguments (and a canary hash) filled in, as a
// rules file.
func TestPromtoolChecksTheQueries(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	need(t, "promtool (Debian's prometheus)", err)
	metrics, args := (&stack{prom: "http://127.0.0.1:1"}).template(t)
	for i, a := range args {
		if a.Name == "window" {
			w := "2m" // the template's own window, not the test's
			args[i].Value = &w
		}
	}
	var rules []map[string]string
	for _, m := range metrics {
		r, err := analysisutil.ResolveMetricArgs(m, args)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, map[string]string{"record": "canary:" + strings.ReplaceAll(r.Name, "-", "_"), "expr": r.Provider.Prometheus.Query})
		if r.Provider.Prometheus == nil || r.Provider.Prometheus.Query == "" {
			t.Errorf("metric %s has no Prometheus query", m.Name)
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "canary", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "canary.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules on the template's queries: %v\n%s\n%s", err, out, b)
	}
	t.Logf("%s", out)
}
