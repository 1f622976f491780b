#!/usr/bin/env bash
# Smoke test of a running orderflow: the spec's verification flow.
#
#   scripts/smoke.sh [BASE_URL [PROCESSOR_URL]]
#   scripts/smoke.sh http://localhost:8000 http://localhost:9090   # the defaults
#
# Steps: api health and readiness; log in; create an order; poll its signed
# status URL until COMPLETED; processor health and readiness;
# orders_processed_total{status="success"} went up; /docs and
# /openapi.json answer. Stops at the first failure with a message saying
# which step failed, and exits 1 (2 for a usage error).
#
# Needs curl, and jq or python3 (for JSON). Settings (environment):
#   SMOKE_USER       user to log in as (default: smoke-<random>; any works with dev login)
#   SMOKE_PASSWORD   its password, when the api has dev login off
#   SMOKE_AMOUNT     order amount in cents (default 999, which the default gateway approves)
#   SMOKE_TIMEOUT    seconds to wait for COMPLETED (default 60)
set -euo pipefail

usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
  exit 2
}
case "${1:-}" in -h | --help) usage ;; esac
[ $# -le 2 ] || usage

BASE_URL=${1:-http://localhost:8000}
PROCESSOR_URL=${2:-http://localhost:9090}
BASE_URL=${BASE_URL%/}
PROCESSOR_URL=${PROCESSOR_URL%/}
SMOKE_USER=${SMOKE_USER:-smoke-$$-$RANDOM}
SMOKE_PASSWORD=${SMOKE_PASSWORD:-}
SMOKE_AMOUNT=${SMOKE_AMOUNT:-999}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-60}

step=start
ok() { printf 'smoke: ok   %s\n' "$*"; }
fail() {
  printf 'smoke: FAIL %s: %s\n' "$step" "$*" >&2
  exit 1
}

command -v curl >/dev/null || fail "curl is not installed"
if command -v jq >/dev/null; then
  json_tool=jq
elif command -v python3 >/dev/null; then
  json_tool=python3
else
  fail "needs jq or python3 to read JSON; install one (apt-get install jq)"
fi

# json_get FIELD reads JSON on stdin and prints its top-level FIELD
# (empty when absent or null).
json_get() {
  if [ "$json_tool" = jq ]; then
    jq -r --arg f "$1" '.[$f] // empty | if type == "string" then . else tojson end'
  else
    python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
if v is not None:
    print(v if isinstance(v, str) else json.dumps(v))
' "$1"
  fi
}

# json_escape STRING prints STRING as a JSON string literal.
json_escape() {
  if [ "$json_tool" = jq ]; then
    jq -Rn --arg s "$1" '$s'
  else
    python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"
  fi
}

body_file=$(mktemp)
err_file=$(mktemp)
trap 'rm -f "$body_file" "$err_file"' EXIT

# http METHOD URL [curl args...] sets $code and leaves the body in $body_file.
# A connection failure fails the step.
http() {
  local method=$1 url=$2
  shift 2
  code=$(curl -sS -o "$body_file" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$url" 2>"$err_file") ||
    fail "$method $url: no answer: $(sed 's/^curl: //' "$err_file")"
}

# expect CODE METHOD URL [curl args...]: the answer must be CODE.
expect() {
  local want=$1
  shift
  http "$@"
  [ "$code" = "$want" ] || fail "$1 $2 answered $code, want $want: $(head -c 300 "$body_file")"
}

# processed_total prints the sum of orders_processed_total{status="success"}
# over every series the processor exports.
processed_total() {
  expect 200 GET "$PROCESSOR_URL/metrics"
  awk '/^orders_processed_total\{/ && /status="success"/ { sum += $NF } END { printf "%d\n", sum }' "$body_file"
}

step="api health"
expect 200 GET "$BASE_URL/health"
ok "$step: $BASE_URL/health"
step="api readiness"
expect 200 GET "$BASE_URL/ready"
ok "$step: $BASE_URL/ready"

step="processor metrics before"
before=$(processed_total)
ok "$step: orders_processed_total{status=\"success\"} = $before"

step="login"
login_body="{\"user_id\":$(json_escape "$SMOKE_USER")"
[ -z "$SMOKE_PASSWORD" ] || login_body+=",\"password\":$(json_escape "$SMOKE_PASSWORD")"
login_body+="}"
expect 200 POST "$BASE_URL/login" -H 'Content-Type: application/json' -d "$login_body"
token=$(json_get access_token <"$body_file") || fail "the answer is not JSON: $(head -c 300 "$body_file")"
[ -n "$token" ] || fail "no access_token in $(head -c 300 "$body_file")"
ok "$step: $SMOKE_USER has a token"

step="create order"
expect 202 POST "$BASE_URL/orders" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"user_id\":$(json_escape "$SMOKE_USER"),\"amount\":$SMOKE_AMOUNT}"
order_id=$(json_get order_id <"$body_file") || fail "the answer is not JSON: $(head -c 300 "$body_file")"
status_url=$(json_get status_url <"$body_file")
status=$(json_get status <"$body_file")
if [ -z "$order_id" ] || [ -z "$status_url" ]; then
  fail "no order_id or status_url in $(head -c 300 "$body_file")"
fi
[ "$status" = PENDING ] || fail "status is $status, want PENDING"
ok "$step: $order_id is PENDING"

step="poll status URL"
deadline=$((SECONDS + SMOKE_TIMEOUT))
while :; do
  expect 200 GET "$status_url"
  status=$(json_get status <"$body_file") || fail "the answer is not JSON: $(head -c 300 "$body_file")"
  case "$status" in
    COMPLETED) break ;;
    REJECTED | FAILED) fail "order $order_id ended $status: $(json_get failure <"$body_file")" ;;
    PENDING | PROCESSING) ;;
    *) fail "unexpected status \"$status\" in $(head -c 300 "$body_file")" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || fail "order $order_id still $status after ${SMOKE_TIMEOUT}s: is the processor running?"
  sleep 0.5
done
ok "$step: $order_id is COMPLETED"

step="processor health"
expect 200 GET "$PROCESSOR_URL/health"
[ "$(json_get status <"$body_file")" = healthy ] || fail "want {\"status\":\"healthy\"}, got $(head -c 300 "$body_file")"
ok "$step: $PROCESSOR_URL/health is healthy"
step="processor readiness"
expect 200 GET "$PROCESSOR_URL/ready"
ok "$step: $PROCESSOR_URL/ready"

step="processor metrics after"
after=$(processed_total)
[ "$after" -gt "$before" ] || fail "orders_processed_total{status=\"success\"} is $after, was $before: the order was not counted"
ok "$step: orders_processed_total{status=\"success\"} = $after"

step="docs"
expect 200 GET "$BASE_URL/docs"
grep -qi '<html' "$body_file" || fail "$BASE_URL/docs is not an HTML page"
expect 301 GET "$BASE_URL/redoc" # where ReDoc was: moved to /docs
expect 200 GET "$BASE_URL/openapi.json"
[ -n "$(json_get openapi <"$body_file")" ] || fail "$BASE_URL/openapi.json has no \"openapi\" field"
ok "$step: /docs and /openapi.json answer, /redoc moved to /docs"

echo "smoke: all checks passed against $BASE_URL and $PROCESSOR_URL"
