package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var scripts = []string{"quickstart.sh", "smoke.sh"}

func TestScriptsParse(t *testing.T) {
	for _, s := range scripts {
		path := filepath.Join(root, "scripts", s)
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
}

// needTool returns the path of a tool, skipping the test without it
// (failing it under CI=true, where scripts/test.sh installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; scripts/test.sh installs it", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func TestScriptsPassShellcheck(t *testing.T) {
	sc := needTool(t, "shellcheck")
	for _, s := range scripts {
		if out, err := exec.Command(sc, filepath.Join(root, "scripts", s)).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", s, err, out)
		}
	}
}

func TestPrometheusFilesPassPromtool(t *testing.T) {
	pt := needTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", "prometheus/prometheus.yml"},
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		if out, err := exec.Command(pt, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
