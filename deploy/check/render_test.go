package check

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// k8sDir is deploy/k8s, from this package.
const k8sDir = "../k8s"

// overlays are the environments: each is built and checked whole.
var overlays = []string{"overlays/dev", "overlays/prod-us-east-1", "overlays/prod-eu-west-1"}

// object is one rendered Kubernetes object.
type object struct {
	build string // the kustomization it came from
	yaml  []byte
	m     map[string]any
}

func (o object) kind() string { return str(o.m, "kind") }
func (o object) name() string { return str(o.m, "metadata", "name") }
func (o object) String() string {
	return o.build + ": " + o.kind() + " " + o.name()
}

// build runs kustomize (its Go API, as kubectl kustomize does) on dir, a
// kustomization under root, and returns the objects it renders.
func build(root, dir string) ([]object, error) {
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: types.LoadRestrictionsRootOnly,
		PluginConfig:     types.DisabledPluginConfig(),
	})
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	var out []object
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		m, err := r.Map()
		if err != nil {
			return nil, err
		}
		out = append(out, object{build: dir, yaml: y, m: m})
	}
	return out, nil
}

// kustomizations lists every directory under root with a kustomization.yaml,
// the components included (they are built through a throwaway overlay,
// see buildAll).
func kustomizations(t *testing.T, root string) (dirs, components []string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "\nkind: Component\n") {
			components = append(components, rel)
		} else {
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs, components
}

// buildAll builds every kustomization of root but the base (which is only
// ever applied through an overlay) and, for each component, the first
// production overlay with that component added, as an overlay that
// includes it would be. It fails t on a build error.
func buildAll(t *testing.T, root string) map[string][]object {
	t.Helper()
	dirs, components := kustomizations(t, root)
	for _, o := range overlays {
		if !slices.Contains(dirs, o) {
			t.Fatalf("no kustomization %s in %s (have %v)", o, root, dirs)
		}
	}
	out := map[string][]object{}
	for _, d := range dirs {
		if d == "base" {
			continue
		}
		objs, err := build(root, d)
		if err != nil {
			t.Errorf("kustomize build %s: %v", d, err)
			continue
		}
		out[d] = objs
	}
	for _, c := range components {
		dir := t.TempDir()
		// kustomize takes bases by relative path only.
		abs := func(p string) string {
			a, _ := filepath.Abs(filepath.Join(root, p))
			r, _ := filepath.Rel(dir, a)
			return r
		}
		k := "resources: [" + abs(overlays[1]) + "]\ncomponents: [" + abs(c) + "]\n"
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		objs, err := build(dir, ".")
		if err != nil {
			t.Errorf("kustomize build %s with component %s: %v", overlays[1], c, err)
			continue
		}
		name := overlays[1] + "+" + c
		for i := range objs {
			objs[i].build = name
		}
		out[name] = objs
	}
	return out
}

// copyTree copies deploy/k8s into a temporary directory, for the tests
// that plant a mistake in it.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(k8sDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(k8sDir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// str returns the string at path in m, or "".
func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

// get returns the value at path in m (map keys; a number-like key is not
// special), or nil.
func get(m any, path ...string) any {
	for _, k := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}
