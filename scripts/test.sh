#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then runs gofmt, go vet and go test -race with coverage.
#
#   scripts/test.sh            # everything
#   scripts/test.sh ./sqlite/  # only some packages (still vetted as a whole)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

say "go modules"
go mod download

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
go test -race -timeout 15m -coverpkg=./... -coverprofile=artifacts/coverage.out "${pkgs[@]}"

say "coverage (all statements, all packages)"
go tool cover -func=artifacts/coverage.out | tail -n 1
