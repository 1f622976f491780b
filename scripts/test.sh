#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then runs gofmt, go vet and go test -race with coverage.
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

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

say "go vet"
go vet ./...

say "go test -race"
mkdir -p artifacts
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
# Coverage counts every package but the benchmark program (run by hand, see
# docs/performance.md).
coverpkg=$(go list ./... | grep -v '/cmd/bench$' | paste -sd, -)
go test -race -timeout 15m -coverpkg="$coverpkg" -coverprofile=artifacts/coverage.out "${pkgs[@]}"

say "coverage (all statements, all packages)"
go tool cover -func=artifacts/coverage.out | tail -n 1
