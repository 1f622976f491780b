// Package deploy holds the files that run orderflow outside `go run`: the
// compose stack (compose/), Terraform for AWS (terraform/), Prometheus
// rules (prometheus/), the Grafana dashboard (grafana/) and Kubernetes
// manifests (k8s/). The image is built by the Dockerfile at the root of the
// module, and scripts/quickstart.sh and scripts/smoke.sh drive it all.
//
// The package has no code; its tests check these files against the
// program: that they parse and are formatted, that every setting, command,
// metric and AWS resource they name is one orderflow really has, and that
// smoke.sh passes against the embedded mode and the AWS mode on moto.
package deploy
