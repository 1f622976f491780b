package check

import (
	"context"
	"fmt"
	"sort"
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
	q, err := preparePolicies()
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
		if name == "cluster" || name == "cluster/istio" {
			continue // no workload: the rules about workloads do not apply
		}
		for _, p := range policyProblems(t, objs) {
			t.Errorf("%s: %s", name, p)
		}
	}
}
