package check

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// policyDir holds the Rego policies, in the repository beside the manifests.
const policyDir = k8sDir + "/policy"

var preparePolicies = sync.OnceValues(func() (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query("data.orderflow.k8s.deny"),
		rego.Load([]string{policyDir}, nil),
	).PrepareForEval(context.Background())
})

// policyProblems evaluates the policies on the objects of one build and
// returns what they deny.
func policyProblems(t *testing.T, objs []object) []string {
	t.Helper()
	input := make([]any, len(objs))
	for i, o := range objs {
		input[i] = o.m
	}
	return evalPolicies(t, input)
}

// evalPolicies evaluates the policies on input, as conftest or OPA would.
func evalPolicies(t *testing.T, input any) []string {
	t.Helper()
	q, err := preparePolicies()
	if err != nil {
		t.Fatalf("policies in %s: %v", policyDir, err)
	}
	rs, err := q.Eval(context.Background(), rego.EvalInput(input))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("evaluate %s: %v (result %v)", policyDir, err, rs)
	}
	msgs, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		t.Fatalf("deny is %T, want a set of messages", rs[0].Expressions[0].Value)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprint(m))
	}
	sort.Strings(out)
	return out
}

// Every overlay meets the spec's rules (policy/orderflow.rego).
func TestPolicies(t *testing.T) {
	for name, objs := range buildAll(t, k8sDir) {
		if name == "cluster" || name == "cluster/istio" || name == argocdDir {
			continue // no workload: the rules about workloads do not apply (argocd has its own, argocd_test.go)
		}
		for _, p := range policyProblems(t, objs) {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// conftest --combine hands the policies [{path, contents}]: they read the
// objects out of it and find the same breaches.
func TestPoliciesReadConftestsCombinedInput(t *testing.T) {
	objs, err := build(k8sDir, overlays[0])
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	for _, o := range objs {
		if o.kind() != "HorizontalPodAutoscaler" { // a breach: the api has no HPA
			docs = append(docs, o.m)
		}
	}
	want := evalPolicies(t, docs)
	got := evalPolicies(t, []any{map[string]any{"path": "-", "contents": docs}})
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("combined input: %q, want the plain input's %q (not empty)", got, want)
	}
}
