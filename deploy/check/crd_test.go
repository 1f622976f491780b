package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// crdSources are the projects whose custom resources deploy/k8s uses, at
// the versions the manifests are written for: their CRDs are read from
// these Go modules (go mod download puts them in the module cache), never
// copied into this repository.
var crdSources = []struct{ module, version, glob string }{
	{"github.com/kedacore/keda/v2", "v2.21.0", "config/crd/bases/keda.sh_*.yaml"},
	{"github.com/cert-manager/cert-manager", "v1.21.2", "deploy/crds/*.yaml"},
	{"istio.io/api", "v1.32.0", "kubernetes/customresourcedefinitions.gen.yaml"},
	{"github.com/prometheus-operator/prometheus-operator", "v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_*.yaml"},
	// Argo CD and Argo Rollouts: for the Application and the Rollout that
	// deliver and canary these workloads. (Argo CD's newer modules need a
	// newer Go than this module's; their CRDs are the same API, v1alpha1.)
	{"github.com/argoproj/argo-cd/v3", "v3.4.5", "manifests/crds/*-crd.yaml"},
	{"github.com/argoproj/argo-rollouts", "v1.10.1", "manifests/crds/*-crd.yaml"},
}

// crdVersion is one served version of a CRD: its schema as the API server
// holds it, and a CEL validator of its x-kubernetes-validations rules.
type crdVersion struct {
	group, version, kind string
	schema               map[string]any // openAPIV3Schema, as JSON
	structural           *structuralschema.Structural
	cel                  *cel.Validator // nil when the version has no rules
}

// loadCRDs reads the CRDs of crdSources, keyed by group/version/kind.
var loadCRDs = sync.OnceValues(func() (map[string]*crdVersion, error) {
	out := map[string]*crdVersion{}
	for _, src := range crdSources {
		dir, err := moduleDir(src.module, src.version)
		if err != nil {
			return nil, err
		}
		files, _ := filepath.Glob(filepath.Join(dir, src.glob))
		if len(files) == 0 {
			return nil, fmt.Errorf("%s@%s has no %s", src.module, src.version, src.glob)
		}
		for _, f := range files {
			if err := readCRDs(f, out); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return out, nil
})

// moduleDir downloads module@version into the module cache (a no-op when
// it is there) and returns its directory.
func moduleDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s %s", module, version, err, info.Error, stderr.String())
	}
	return info.Dir, nil
}

// readCRDs adds the CRDs of a YAML file (one or more documents) to out.
func readCRDs(file string, out map[string]*crdVersion) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		err := dec.Decode(&crd)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			cv, err := newCRDVersion(crd.Spec.Group, v.Name, crd.Spec.Names.Kind, v.Schema.OpenAPIV3Schema)
			if err != nil {
				return fmt.Errorf("%s %s: %w", crd.Name, v.Name, err)
			}
			out[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = cv
		}
	}
}

func newCRDVersion(group, version, kind string, s *apiextensionsv1.JSONSchemaProps) (*crdVersion, error) {
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(s, &internal, nil); err != nil {
		return nil, err
	}
	ss, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &crdVersion{
		group: group, version: version, kind: kind,
		schema:     m,
		structural: ss,
		cel:        cel.NewValidator(ss, true, celconfig.PerCallLimit),
	}, nil
}

// celErrors runs the CRD's CEL rules on obj, as the API server does on a
// create.
func (v *crdVersion) celErrors(obj map[string]any) []string {
	if v.cel == nil {
		return nil
	}
	errs, _ := v.cel.Validate(context.Background(), field.NewPath(""), v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// jsonSchema converts a CRD's OpenAPI v3 schema into the JSON schema that
// kubeconform reads, strict as the API server is about unknown fields:
// every object with properties allows no others (unless it preserves
// unknown fields), and x-kubernetes-int-or-string becomes string or
// integer. (This is what kubeconform's openapi2jsonschema does.)
func jsonSchema(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch vv := v.(type) {
		case map[string]any:
			if k == "properties" || k == "patternProperties" || k == "definitions" {
				props := map[string]any{}
				for name, p := range vv {
					props[name] = jsonSchema(p.(map[string]any))
				}
				out[k] = props
			} else {
				out[k] = jsonSchema(vv)
			}
		case []any:
			items := make([]any, len(vv))
			for i, e := range vv {
				if em, ok := e.(map[string]any); ok {
					items[i] = jsonSchema(em)
				} else {
					items[i] = e
				}
			}
			out[k] = items
		default:
			out[k] = v
		}
	}
	if out["x-kubernetes-int-or-string"] == true {
		delete(out, "type")
		delete(out, "format")
		out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
	}
	if _, has := out["properties"]; has && out["x-kubernetes-preserve-unknown-fields"] != true {
		if _, set := out["additionalProperties"]; !set {
			out["additionalProperties"] = false
		}
	}
	return out
}

// rootSchema adds to a CRD's schema what the API server allows at the root
// of every object whatever the CRD says: apiVersion, kind and metadata.
func rootSchema(s map[string]any) map[string]any {
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		s["properties"] = props
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if _, ok := props[k]; !ok {
			props[k] = map[string]any{"type": "string"}
		}
	}
	if _, ok := props["metadata"]; !ok {
		props["metadata"] = map[string]any{"type": "object"}
	}
	return s
}

// writeCRDSchemas writes the JSON schema of every CRD version under dir as
// kubeconform's template {{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json
// names them.
func writeCRDSchemas(dir string, crds map[string]*crdVersion) error {
	for _, v := range crds {
		p := filepath.Join(dir, v.group, strings.ToLower(v.kind)+"_"+v.version+".json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := json.Marshal(rootSchema(jsonSchema(v.schema)))
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
