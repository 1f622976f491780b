// Package check holds the tests of deploy/k8s by the tools that consume
// those files: kustomize builds every overlay, kubeconform validates every
// object strictly against the Kubernetes JSON schemas of the PyPI package
// kubernetes-validate and against the CRDs of KEDA, cert-manager, Istio and
// the Prometheus Operator taken from their Go modules, the apiextensions
// apiserver's validation runs the CRDs' CEL rules, Rego policies
// (deploy/k8s/policy) state the spec's rules, and the manifests are
// cross-checked with the orderflow binary. It is a module of its own so
// that the product's go.mod keeps only what the binary needs.
package check
