package check

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/open-policy-agent/opa/v1/rego"
	"sigs.k8s.io/yaml"
)

// argocdDir is the kustomization of Argo CD's objects, under deploy/k8s.
const argocdDir = "argocd"

// repoPrefix is where deploy/k8s sits in the repository an Application
// syncs from: its source paths are this plus a kustomization of deploy/k8s.
const repoPrefix = "deploy/k8s/"

var prepareArgoPolicies = sync.OnceValues(func() (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query("data.orderflow.argocd.deny"),
		rego.Load([]string{policyDir}, nil),
	).PrepareForEval(context.Background())
})

// argoPolicyProblems evaluates policy/argocd.rego on the objects.
func argoPolicyProblems(t *testing.T, objs []object) []string {
	t.Helper()
	q, err := prepareArgoPolicies()
	if err != nil {
		t.Fatalf("policies in %s: %v", policyDir, err)
	}
	input := make([]any, len(objs))
	for i, o := range objs {
		input[i] = o.m
	}
	rs, err := q.Eval(context.Background(), rego.EvalInput(input))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("evaluate %s: %v (result %v)", policyDir, err, rs)
	}
	msgs, _ := rs[0].Expressions[0].Value.([]any)
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprint(m))
	}
	sort.Strings(out)
	return out
}

// cluster is a cluster as the ApplicationSet's clusters generator sees it:
// its name, its server and its labels (the generator's parameters).
type cluster struct {
	name, server string
	labels       map[string]string
}

// prodClusters are the clusters a production Argo CD has registered, one
// per production overlay, labelled as docs/kubernetes.md tells the operator.
func prodClusters(t *testing.T, root string) []cluster {
	t.Helper()
	dirs, _ := kustomizations(t, root)
	var out []cluster
	for _, d := range dirs {
		region, ok := strings.CutPrefix(d, "overlays/prod-")
		if !ok {
			continue
		}
		out = append(out, cluster{
			name:   "orderflow-prod-" + region,
			server: "https://eks." + region + ".example.com",
			labels: map[string]string{"orderflow.example.com/environment": "prod", "orderflow.example.com/region": region},
		})
	}
	return out
}

// generate renders an ApplicationSet's template for each cluster its
// clusters generator selects (matchLabels and the Exists/In/NotIn
// expressions), as Argo CD's go templates do (text/template, with its
// missingkey option), and returns the Applications.
func generate(set object, clusters []cluster) ([]object, error) {
	var out []object
	tmpl, _ := get(set.m, "spec", "template").(map[string]any)
	gens, _ := get(set.m, "spec", "generators").([]any)
	for _, g := range gens {
		sel, ok := get(g, "clusters", "selector").(map[string]any)
		if !ok {
			return nil, fmt.Errorf("generator %v is not a clusters generator with a selector", g)
		}
		for _, c := range clusters {
			if !selects(sel, c.labels) {
				continue
			}
			labels := map[string]any{}
			for k, v := range c.labels {
				labels[k] = v
			}
			params := map[string]any{"name": c.name, "nameNormalized": c.name, "server": c.server, "metadata": map[string]any{"labels": labels, "annotations": map[string]any{}}}
			spec, err := render(tmpl, params)
			if err != nil {
				return nil, fmt.Errorf("template for cluster %s: %w", c.name, err)
			}
			m := spec.(map[string]any)
			app := map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": m["metadata"], "spec": m["spec"]}
			y, err := yaml.Marshal(app)
			if err != nil {
				return nil, err
			}
			out = append(out, object{build: set.build + " for cluster " + c.name, yaml: y, m: app})
		}
	}
	return out, nil
}

// render executes every string of v as a go template on params.
func render(v any, params map[string]any) (any, error) {
	switch vv := v.(type) {
	case string:
		t, err := template.New("").Option("missingkey=error").Parse(vv)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := t.Execute(&b, params); err != nil {
			return nil, err
		}
		return b.String(), nil
	case map[string]any:
		out := map[string]any{}
		for k, e := range vv {
			r, err := render(e, params)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(vv))
		for i, e := range vv {
			r, err := render(e, params)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// selects reports whether a label selector matches labels.
func selects(sel map[string]any, labels map[string]string) bool {
	ml, _ := sel["matchLabels"].(map[string]any)
	for k, v := range ml {
		if labels[k] != v {
			return false
		}
	}
	exprs, _ := sel["matchExpressions"].([]any)
	for _, e := range exprs {
		key, op := str(e.(map[string]any), "key"), str(e.(map[string]any), "operator")
		val, has := labels[key]
		vals, _ := get(e, "values").([]any)
		in := false
		for _, x := range vals {
			in = in || x == val
		}
		switch op {
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// applications returns the Applications of an Argo CD build: those written
// out and those its ApplicationSets generate for the production clusters.
func applications(t *testing.T, root string, objs []object) ([]object, []string) {
	t.Helper()
	var apps []object
	var problems []string
	for _, o := range objs {
		switch o.kind() {
		case "Application":
			apps = append(apps, o)
		case "ApplicationSet":
			gen, err := generate(o, prodClusters(t, root))
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", o, err))
			}
			if len(gen) == 0 && err == nil {
				problems = append(problems, fmt.Sprintf("%s generates no Application for the production clusters", o))
			}
			apps = append(apps, gen...)
		}
	}
	return apps, problems
}

// argocdProblems checks Argo CD's objects against what they deliver: each
// Application (written or generated) syncs an overlay that exists, every
// overlay has exactly one Application, each is valid against the
// Application CRD, its destination is one its project allows, and the
// project allows every kind that the overlays and components render.
func argocdProblems(t *testing.T, root string, objs []object) []string {
	t.Helper()
	out := argoPolicyProblems(t, objs)
	apps, problems := applications(t, root, objs)
	out = append(out, problems...)
	out = append(out, schemaProblems(t, apps)...)

	projects := map[string]object{}
	for _, o := range objs {
		if o.kind() == "AppProject" {
			projects[o.name()] = o
		}
	}
	dirs, _ := kustomizations(t, root)
	delivered := map[string][]string{}
	for _, a := range apps {
		p := str(a.m, "spec", "source", "path")
		dir, ok := strings.CutPrefix(p, repoPrefix)
		if _, err := os.Stat(filepath.Join(root, dir, "kustomization.yaml")); !ok || err != nil || !strings.HasPrefix(dir, "overlays/") {
			out = append(out, fmt.Sprintf("%s syncs %s, which is not an overlay of deploy/k8s", a, p))
		}
		delivered[dir] = append(delivered[dir], a.String())
		if proj, ok := projects[str(a.m, "spec", "project")]; ok {
			dest := str(a.m, "spec", "destination", "name")
			allowed := false
			ds, _ := get(proj.m, "spec", "destinations").([]any)
			for _, d := range ds {
				if m, _ := path.Match(str(d.(map[string]any), "name"), dest); m {
					allowed = true
				}
			}
			if !allowed {
				out = append(out, fmt.Sprintf("%s deploys to cluster %q, which project %s does not allow", a, dest, proj.name()))
			}
		}
	}
	for _, d := range dirs {
		if strings.HasPrefix(d, "overlays/") && len(delivered[d]) != 1 {
			out = append(out, fmt.Sprintf("overlay %s is synced by %d Applications (%v), want one", d, len(delivered[d]), delivered[d]))
		}
	}

	for name, proj := range projects {
		allowed := map[string]bool{}
		for _, list := range []string{"clusterResourceWhitelist", "namespaceResourceWhitelist"} {
			ws, _ := get(proj.m, "spec", list).([]any)
			for _, w := range ws {
				allowed[str(w.(map[string]any), "group")+"/"+str(w.(map[string]any), "kind")] = true
			}
		}
		for build, bobjs := range buildAll(t, root) {
			if build == argocdDir || strings.HasPrefix(build, "cluster") {
				continue // applied by hand, once per cluster or to Argo CD
			}
			for _, o := range bobjs {
				group, _, _ := strings.Cut(str(o.m, "apiVersion"), "/")
				if !strings.Contains(str(o.m, "apiVersion"), "/") {
					group = ""
				}
				if !allowed[group+"/"+o.kind()] {
					out = append(out, fmt.Sprintf("AppProject %s does not allow %s (group %q), which %s renders", name, o.kind(), group, build))
				}
			}
		}
	}
	sort.Strings(out)
	return slicesCompact(out)
}

func slicesCompact(s []string) []string {
	var out []string
	for i, e := range s {
		if i == 0 || e != s[i-1] {
			out = append(out, e)
		}
	}
	return out
}

// Argo CD's objects meet policy/argocd.rego, deliver every overlay once
// from this repository, and their project allows what the overlays render.
func TestArgoCDDeliversEveryOverlay(t *testing.T) {
	objs, err := build(k8sDir, argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range argocdProblems(t, k8sDir, objs) {
		t.Errorf("%s", p)
	}
	apps, _ := applications(t, k8sDir, objs)
	for _, a := range apps {
		t.Logf("%s: %s → %s", a, str(a.m, "spec", "source", "path"), str(a.m, "spec", "destination", "name"))
	}
}
