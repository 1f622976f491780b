package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A check is only as good as the mistake it catches: each case plants one
// in a copy of deploy/k8s and expects its check to report it (and the
// unchanged files pass, as the other tests of this package show).
func TestEachCheckCatchesItsPlantedMistake(t *testing.T) {
	b, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]func(t *testing.T, objs []object) []string{
		"schema": schemaProblems,
		"policy": policyProblems,
		"binary": func(_ *testing.T, objs []object) []string { return crossProblems(b, objs) },
	}
	for _, tt := range plantedMistakes {
		t.Run(tt.name, func(t *testing.T) {
			root := copyTree(t)
			plant(t, root, tt.file, tt.old, tt.new)
			dir := "overlays/prod-us-east-1"
			switch {
			case strings.HasPrefix(tt.file, "overlays/"):
				dir = filepath.Dir(tt.file)
			case strings.HasPrefix(tt.file, argocdDir+"/"):
				dir = argocdDir
			case strings.HasPrefix(tt.file, "components/"):
				dir = "with-component"
				k := "resources: [../overlays/prod-us-east-1]\ncomponents: [../" + filepath.Dir(tt.file) + "]\n"
				if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := build(root, dir)
			var got []string
			if err != nil {
				got = []string{err.Error()}
			} else if tt.check == "build" {
				t.Fatalf("kustomize build %s with the mistake: no error", dir)
			} else if tt.check == "argocd" {
				got = argocdProblems(t, root, objs)
			} else {
				got = checks[tt.check](t, objs)
			}
			if !anyContains(got, tt.want) {
				t.Errorf("the %s check with the mistake reported %q, want a problem mentioning %q", tt.check, got, tt.want)
			}
		})
	}
}

// plant replaces old (which must be there) with new in file under root.
func plant(t *testing.T, root, file, old, new string) {
	t.Helper()
	p := filepath.Join(root, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q to change", file, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func anyContains(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// plantedMistakes are the mistakes, one or more per check: the file of
// deploy/k8s changed, the text replaced, and what the report must mention.
var plantedMistakes = []struct {
	name, check, file, old, new, want string
}{
	{"a patch file that is missing fails the build", "build", "overlays/prod-us-east-1/kustomization.yaml", "path: scaling.yaml", "path: scaling-typo.yaml", "scaling-typo.yaml"},
	{"an unknown field of a Deployment (a typo) is refused", "schema", "base/api.yaml", "readinessProbe:", "readynessProbe:", "readynessProbe"},
	{"a field of the wrong type is refused", "schema", "base/api.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: thirty", "terminationGracePeriodSeconds"},
	{"a KEDA trigger value that is not a string is refused", "schema", "base/processor.yaml", `activationQueueLength: "0"`, "activationQueueLength: 0", "activationQueueLength"},
	{"an unknown field of a custom resource is refused", "schema", "base/processor.yaml", "identityOwner: workload", "identityowner: workload", "identityowner"},
	{"an Istio field of the wrong type is refused", "schema", "components/istio/gateway.yaml", "number: 443", "number: https", "number"},
	{"a ScaledObject whose minimum exceeds its maximum breaks the CRD's CEL rule", "schema", "overlays/prod-us-east-1/scaling.yaml", "minReplicaCount: 3", "minReplicaCount: 40", "CEL rule"},
	{"an HPA not at 70 % CPU breaks the spec", "policy", "base/api.yaml", "averageUtilization: 70", "averageUtilization: 80", "70%"},
	{"replicas beside the HPA are refused", "policy", "base/api.yaml", "  revisionHistoryLimit: 5\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: orderflow-api", "  replicas: 3\n  revisionHistoryLimit: 5\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: orderflow-api", "replicas beside"},
	{"a workload without a PDB is refused", "policy", "base/processor.yaml", "name: orderflow-processor\n  labels:\n    app.kubernetes.io/name: orderflow-processor\nspec:\n  maxUnavailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: orderflow-processor", "name: orderflow-processor\n  labels:\n    app.kubernetes.io/name: orderflow-processor\nspec:\n  maxUnavailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: orderflow-worker", "no PodDisruptionBudget"},
	{"a workload not spread across zones is refused", "policy", "base/processor.yaml", "topologyKey: topology.kubernetes.io/zone", "topologyKey: topology.kubernetes.io/region", "zones"},
	{"a pod that may run as root is refused", "policy", "base/api.yaml", "runAsNonRoot: true\n        runAsUser: 65532", "runAsNonRoot: false\n        runAsUser: 65532", "runAsNonRoot"},
	{"an Ingress host without TLS is refused", "policy", "overlays/dev/kustomization.yaml", "path: /spec/tls/0/hosts/0\n        value: api.dev.orderflow.example.com", "path: /spec/tls/0/hosts/0\n        value: other.example.com", "without TLS"},
	{"the latest tag is refused", "policy", "overlays/prod-eu-west-1/kustomization.yaml", `newTag: "1.0.0"`, `newTag: latest`, "latest"},
	{"a Secret from the repository is refused", "policy", "base/kustomization.yaml", "  - ingress.yaml\n", "  - ingress.yaml\nsecretGenerator:\n  - name: orderflow-secrets\n    literals: [jwt=k1:not-a-real-secret-but-still-in-git]\n", "Secret orderflow-secrets"},
	{"a secret inline in the ConfigMap is refused", "policy", "base/configmap.yaml", "  ENV: prod\n", "  ENV: prod\n  JWT_SECRET: k1:not-a-real-secret-but-still-in-git\n", "carries the secret JWT_SECRET"},
	{"a setting the binary does not have (a typo) is refused", "binary", "base/configmap.yaml", "ORDERFLOW_CONCURRENCY:", "ORDERFLOW_CONCURENCY:", "ORDERFLOW_CONCURENCY"},
	{"a subcommand the binary does not have is refused", "binary", "base/api.yaml", `args: ["api"]`, `args: ["apiserver"]`, "apiserver"},
	{"a container port other than the binary's is refused", "binary", "base/processor.yaml", "containerPort: 9090", "containerPort: 9091", "9090"},
	{"a probe path the binary does not serve is refused", "binary", "base/api.yaml", "path: /ready", "path: /readyz", "/ready"},
	{"a queueLength other than the concurrency is refused", "binary", "base/processor.yaml", `queueLength: "64"`, `queueLength: "32"`, "ORDERFLOW_CONCURRENCY"},
	{"a public URL that is not the Ingress host is refused", "binary", "overlays/prod-us-east-1/config.yaml", "ORDERFLOW_PUBLIC_URL: https://api.us-east-1", "ORDERFLOW_PUBLIC_URL: https://api.eu-west-1", "ORDERFLOW_PUBLIC_URL"},
	{"a NetworkPolicy that selects no pod is refused", "policy", "base/kustomization.yaml", "    includeTemplates: true", "    includeTemplates: false", "the pods of no Deployment"},
	{"an Ingress that does not force https is refused", "policy", "base/ingress.yaml", `force-ssl-redirect: "true"`, `force-ssl-redirect: "false"`, "force https"},
	{"an Istio route without HSTS is refused", "policy", "components/istio/gateway.yaml", "Strict-Transport-Security: max-age", "X-Frame-Options: max-age", "Strict-Transport-Security"},
	{"a secret file the Vault Agent does not render is refused", "binary", "base/api.yaml", "value: /vault/secrets/url-signing-key", "value: /vault/secrets/url-key", "does not render"},
	{"an api reachable from any namespace is refused", "policy", "base/networkpolicies.yaml", "              kubernetes.io/metadata.name: ingress-nginx\n", "              team: web\n", "reachable from"},
	{"a grace period shorter than the drain is refused", "binary", "base/processor.yaml", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds"},
	{"config that syncs in the wave of the workloads is refused", "policy", "base/kustomization.yaml", `argocd.argoproj.io/sync-wave: "-2"`, `argocd.argoproj.io/sync-wave: "0"`, "not before Deployment orderflow-api"},
	{"a typo in an Application is refused by its CRD", "schema", "argocd/dev.yaml", "selfHeal: true", "selfheal: true", "selfheal"},
	{"an Application that does not prune is refused", "argocd", "argocd/dev.yaml", "prune: true", "prune: false", "Application orderflow-dev does not prune"},
	{"an ApplicationSet whose Applications do not self-heal is refused", "argocd", "argocd/prod.yaml", "selfHeal: true", "selfHeal: false", "ApplicationSet orderflow-prod's template does not self-heal"},
	{"a retry without backoff is refused", "argocd", "argocd/dev.yaml", "      backoff:\n        duration: 10s\n        factor: 2\n        maxDuration: 3m\n", "", "without backoff"},
	{"an Application that does not create its namespace is refused", "argocd", "argocd/prod.yaml", "- CreateNamespace=true", "- Validate=true", "does not create its namespace"},
	{"a project open to any repository is refused", "argocd", "argocd/project.yaml", "- https://github.com/orderflow/orderflow.git", "- '*'", "allows any repository"},
	{"a generated Application whose overlay does not exist is refused", "argocd", "argocd/prod.yaml", "path: 'deploy/k8s/overlays/prod-", "path: 'deploy/k8s/overlays/production-", "not an overlay of deploy/k8s"},
	{"a generated Application that breaks the Application CRD is refused", "argocd", "argocd/prod.yaml", "maxDuration: 3m", "maxDuraton: 3m", "maxDuraton"},
	{"an overlay synced by two Applications is refused", "argocd", "argocd/dev.yaml", "path: deploy/k8s/overlays/dev", "path: deploy/k8s/overlays/prod-us-east-1", "synced by 2 Applications"},
	{"a kind the project does not allow is refused", "argocd", "argocd/project.yaml", "    - {group: keda.sh, kind: ScaledObject}\n", "", "does not allow ScaledObject"},
	{"a cluster the project does not allow is refused", "argocd", "argocd/project.yaml", "- name: orderflow-prod-*", "- name: orderflow-production-*", "which project orderflow does not allow"},
	{"a region label the generator does not select generates nothing", "argocd", "argocd/prod.yaml", "matchLabels:\n            orderflow.example.com/environment: prod", "matchLabels:\n            orderflow.example.com/environment: production", "generates no Application"},
	{"a Rollout on an AnalysisTemplate that is not there is refused", "policy", "components/canary/rollout.yaml", "- templateName: orderflow-canary", "- templateName: orderflow-canary-v2", "AnalysisTemplate orderflow-canary-v2, which is not there"},
	{"a Rollout that shifts traffic on a route the VirtualService lacks is refused", "policy", "components/canary/rollout.yaml", "routes: [api]", "routes: [primary]", "route primary of VirtualService orderflow-api"},
	{"a canary promoted with no analysis step is refused", "policy", "components/canary/rollout.yaml", "        - analysis:\n            templates:\n              - templateName: orderflow-canary\n            args: *args\n", "", "no analysis step"},
	{"a canary weight that is not a number is refused by the Rollout CRD", "schema", "components/canary/rollout.yaml", "setWeight: 25", "setWeight: quarter", "setWeight"},
	{"an AnalysisTemplate typo is refused by its CRD", "schema", "components/canary/analysis.yaml", "failureLimit: 1", "failurelimit: 1", "failurelimit"},
}
