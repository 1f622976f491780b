// Package canary proves the canary analysis of deploy/k8s/components/canary
// for real: its tests start an orderflow built from this repository and
// Debian's prometheus scraping it on 127.0.0.1, and evaluate the
// AnalysisTemplate's metrics with its arguments filled in through Argo
// Rollouts' own Prometheus metric provider and evaluator, on a healthy run
// and with failures injected. A module of its own: argo-rollouts pins the
// Kubernetes modules with replace directives, repeated in go.mod.
package canary
