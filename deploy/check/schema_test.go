package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/yannh/kubeconform/pkg/resource"
	"github.com/yannh/kubeconform/pkg/validator"
)

// kubeVersions are the Kubernetes releases the manifests are validated
// against: the oldest they support (1.30: lifecycle.preStop.sleep is on by
// default from there) and the newest whose schemas kubernetes-validate ships.
var kubeVersions = []string{"1.30.0", "1.37.0"}

// need skips t when a tool the check needs is missing, or fails it under
// CI=true (where scripts/test.sh installed it, and a skip would pass unseen).
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("this check needs %s under CI=true: %v", what, err)
	}
	t.Skipf("no %s (scripts/test.sh installs it): %v", what, err)
}

// kubeSchemaDir finds the Kubernetes JSON schemas of the PyPI package
// kubernetes-validate: ORDERFLOW_KUBERNETES_SCHEMAS (its
// kubernetes-json-schema directory, which scripts/test.sh sets), or the
// package in a virtualenv under ~/.cache/orderflow.
func kubeSchemaDir() (string, error) {
	if d := os.Getenv("ORDERFLOW_KUBERNETES_SCHEMAS"); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	m, _ := filepath.Glob(filepath.Join(cache, "orderflow", "kubernetes-validate-*", "lib", "python3*", "site-packages", "kubernetes_validate", "kubernetes-json-schema"))
	if len(m) == 0 {
		return "", fmt.Errorf("no kubernetes-validate under %s/orderflow and ORDERFLOW_KUBERNETES_SCHEMAS unset", cache)
	}
	sort.Strings(m)
	return m[len(m)-1], nil
}

// schemas is a directory of JSON schemas laid out for kubeconform: the
// Kubernetes ones of each version and the CRDs'.
type schemas struct {
	dir  string
	crds map[string]*crdVersion
}

var loadSchemas = sync.OnceValues(func() (*schemas, error) {
	src, err := kubeSchemaDir()
	if err != nil {
		return nil, err
	}
	crds, err := loadCRDs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orderflow-schemas-")
	if err != nil {
		return nil, err
	}
	for _, v := range kubeVersions {
		if err := copyKubeSchemas(filepath.Join(src, "v"+v+"-local-strict"), filepath.Join(dir, v)); err != nil {
			return nil, err
		}
	}
	if err := writeCRDSchemas(filepath.Join(dir, "crd"), crds); err != nil {
		return nil, err
	}
	return &schemas{dir: dir, crds: crds}, nil
})

// copyKubeSchemas copies kubernetes-validate's schemas of one release.
// They name their shared definitions by the URL
// https://kubernetes.io/api/_definitions.json, which kubernetes-validate
// maps to its file; here the references are made relative to the file
// instead, so that nothing is fetched.
func copyKubeSchemas(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		delete(m, "$id")
		b, _ = json.Marshal(m)
		ref := `"_definitions.json#`
		if e.Name() == "_definitions.json" {
			ref = `"#`
		}
		b = []byte(strings.ReplaceAll(string(b), `"/api/_definitions.json#`, ref))
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// validators returns a strict kubeconform validator per Kubernetes version;
// an object whose kind has no schema is invalid, never skipped.
func (s *schemas) validators() (map[string]validator.Validator, error) {
	out := map[string]validator.Validator{}
	for _, v := range kubeVersions {
		val, err := validator.New([]string{
			filepath.Join(s.dir, v, "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
			filepath.Join(s.dir, "crd", "{{ .Group }}", "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
		}, validator.Opts{Strict: true, KubernetesVersion: v})
		if err != nil {
			return nil, err
		}
		out[v] = val
	}
	return out, nil
}

// loadValidators makes the validators once: each compiles a schema the
// first time it meets its kind and keeps it.
var loadValidators = sync.OnceValues(func() (map[string]validator.Validator, error) {
	s, err := loadSchemas()
	if err != nil {
		return nil, err
	}
	return s.validators()
})

// schemaProblems validates every object with kubeconform (strict) on each
// Kubernetes version, and runs the CEL rules of the CRD of each custom
// resource.
func schemaProblems(t *testing.T, objs []object) []string {
	t.Helper()
	s, err := loadSchemas()
	need(t, "kubernetes-validate's schemas and the CRD modules", err)
	vals, err := loadValidators()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		for v, val := range vals {
			r := val.ValidateResource(resource.Resource{Path: o.String(), Bytes: o.yaml})
			switch r.Status {
			case validator.Valid:
			case validator.Invalid:
				// r.Err has the whole chain of causes; ValidationErrors
				// only the outermost of a $ref.
				out = append(out, fmt.Sprintf("%s (Kubernetes %s): %v", o, v, r.Err))
			default:
				out = append(out, fmt.Sprintf("%s (Kubernetes %s): not validated: status %d, %v", o, v, r.Status, r.Err))
			}
		}
		if crd, ok := s.crds[str(o.m, "apiVersion")+"/"+o.kind()]; ok {
			for _, e := range crd.celErrors(o.m) {
				out = append(out, fmt.Sprintf("%s: CEL rule of its CRD: %s", o, e))
			}
		}
	}
	return out
}

// Every object of every overlay is valid against its schema, strictly (no
// unknown field), on the oldest and the newest Kubernetes supported, and
// passes its CRD's CEL rules.
func TestEveryObjectMatchesItsSchema(t *testing.T) {
	for name, objs := range buildAll(t, k8sDir) {
		for _, p := range schemaProblems(t, objs) {
			t.Errorf("%s", p)
		}
		t.Logf("%s: %d objects validated", name, len(objs))
	}
}

// The CRDs of every project the spec names load, structural as the API
// server requires, with the kinds these manifests use and the Argo ones
// that deliver them.
func TestTheProjectsCRDsLoad(t *testing.T) {
	crds, err := loadCRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"keda.sh/v1alpha1/ScaledObject", "keda.sh/v1alpha1/TriggerAuthentication",
		"cert-manager.io/v1/ClusterIssuer", "cert-manager.io/v1/Certificate",
		"networking.istio.io/v1/Gateway", "networking.istio.io/v1/VirtualService",
		"monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PodMonitor",
		"argoproj.io/v1alpha1/Application", "argoproj.io/v1alpha1/Rollout", "argoproj.io/v1alpha1/AnalysisTemplate",
	} {
		if crds[k] == nil {
			t.Errorf("no CRD for %s among the %d loaded", k, len(crds))
		}
	}
}
