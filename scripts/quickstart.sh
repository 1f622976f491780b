#!/usr/bin/env bash
# Brings orderflow up on this machine, the simplest way available, and says
# which it chose:
#
#   compose    Docker is running: deploy/compose (LocalStack, `orderflow init`,
#              api :8000, processor :9090, Prometheus :9091, Grafana :3000)
#   embedded   no Docker: the default mode, as `go run ./cmd/orderflow` (one
#              process, one SQLite file), api :8000, processor :9090
#   aws-moto   --aws-moto: the AWS mode against a moto_server started here
#              (:4566), after `orderflow init` made the queue, DLQ and table
#
#   scripts/quickstart.sh              # compose if Docker runs, else embedded
#   scripts/quickstart.sh --embedded   # or --compose, --aws-moto
#   scripts/quickstart.sh --down       # stop what it started
#   scripts/smoke.sh                   # then check it works
#
# Settings (environment): ORDERFLOW_API_ADDR and ORDERFLOW_PROCESSOR_ADDR
# (default :8000 and :9090), MOTO_PORT (4566), COMPOSE_PROFILES (moto to use
# moto_server in compose), QUICKSTART_BIN (a prebuilt orderflow binary),
# QUICKSTART_DIR (where the embedded and aws-moto modes keep files and logs,
# default tmp/quickstart).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf 'quickstart: %s\n' "$*"; }
die() {
  printf 'quickstart: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$root/scripts/quickstart.sh" >&2
  exit 2
}

mode=auto
case "${1:-}" in
  "") ;;
  --compose) mode=compose ;;
  --embedded) mode=embedded ;;
  --aws-moto) mode=aws-moto ;;
  --down) mode=down ;;
  -h | --help) usage ;;
  *) usage ;;
esac
[ $# -le 1 ] || usage

state=${QUICKSTART_DIR:-$root/tmp/quickstart}
compose_file=$root/deploy/compose/compose.yaml
api_addr=${ORDERFLOW_API_ADDR:-:8000}
processor_addr=${ORDERFLOW_PROCESSOR_ADDR:-:9090}
moto_port=${MOTO_PORT:-4566}

# url_of ADDR turns a listen address (":8000", "127.0.0.1:8000") into a URL.
url_of() {
  local host=${1%:*} port=${1##*:}
  [ -n "$host" ] && [ "$host" != 0.0.0.0 ] || host=localhost
  printf 'http://%s:%s' "$host" "$port"
}
api_url=$(url_of "$api_addr")
processor_url=$(url_of "$processor_addr")

docker_runs() {
  command -v docker >/dev/null && docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1
}

# wait_ready URL SECONDS [PID] polls URL until it answers 200.
wait_ready() {
  local url=$1 deadline=$((SECONDS + $2)) pid=${3:-}
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# stop_pid NAME stops the process recorded in $state/NAME.pid.
stop_pid() {
  local f=$state/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

# orderflow_bin prints the path of an orderflow binary, building one if needed.
orderflow_bin() {
  if [ -n "${QUICKSTART_BIN:-}" ]; then
    printf '%s\n' "$QUICKSTART_BIN"
    return
  fi
  command -v go >/dev/null || die "Go is not installed (https://go.dev/dl/), and Docker is not running"
  mkdir -p "$state"
  go build -o "$state/orderflow" ./cmd/orderflow || die "go build ./cmd/orderflow failed"
  printf '%s\n' "$state/orderflow"
}

# moto_server_bin prints a moto_server to run, installing the pinned one
# into ~/.cache/orderflow/moto-5.2.5 when there is none.
moto_server_bin() {
  local venv=$HOME/.cache/orderflow/moto-5.2.5
  if [ -n "${ORDERFLOW_MOTO_SERVER:-}" ]; then
    printf '%s\n' "$ORDERFLOW_MOTO_SERVER"
  elif [ -x "$venv/bin/moto_server" ]; then
    printf '%s\n' "$venv/bin/moto_server"
  elif command -v moto_server >/dev/null; then
    command -v moto_server
  else
    command -v python3 >/dev/null || die "--aws-moto needs python3 to install moto_server"
    say "installing moto[server]==5.2.5 into $venv" >&2
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "moto[server]==5.2.5"; } >&2; then
      die "could not install moto[server] (python3-venv missing? apt-get install python3-venv)"
    fi
    printf '%s\n' "$venv/bin/moto_server"
  fi
}

# start_orderflow BIN starts `orderflow serve` in the background.
start_orderflow() {
  local bin=$1 pid
  ORDERFLOW_API_ADDR=$api_addr ORDERFLOW_PROCESSOR_ADDR=$processor_addr \
    ORDERFLOW_DB=${ORDERFLOW_DB:-$state/orderflow.db} \
    nohup "$bin" serve >"$state/orderflow.log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/orderflow.pid"
  if ! wait_ready "$api_url/ready" 60 "$pid" || ! wait_ready "$processor_url/ready" 30 "$pid"; then
    tail -n 20 "$state/orderflow.log" >&2 || true
    die "orderflow did not become ready (log: $state/orderflow.log)"
  fi
}

print_urls() {
  cat <<EOT
quickstart: ready
  api            $api_url   (docs: $api_url/docs, $api_url/openapi.json)
  processor      $processor_url/health, /ready, /metrics
EOT
}

case "$mode" in
  down)
    if [ -f "$state/compose" ]; then
      docker compose -f "$compose_file" down -v
      rm -f "$state/compose"
    fi
    stop_pid orderflow
    stop_pid moto
    say "down"
    exit 0
    ;;
  auto)
    if docker_runs; then
      mode=compose
      say "Docker is running: starting the compose stack (AWS mode on ${COMPOSE_PROFILES:-localstack})"
    else
      mode=embedded
      say "Docker is not running: starting the embedded mode (SQLite; like go run ./cmd/orderflow)"
    fi
    ;;
  compose)
    docker_runs || die "--compose needs a running Docker engine with the compose plugin"
    say "starting the compose stack (AWS mode on ${COMPOSE_PROFILES:-localstack})"
    ;;
  embedded) say "starting the embedded mode (SQLite; like go run ./cmd/orderflow)" ;;
  aws-moto) say "starting the AWS mode on a local moto_server (127.0.0.1:$moto_port)" ;;
esac

mkdir -p "$state"
if [ -f "$state/orderflow.pid" ] && kill -0 "$(cat "$state/orderflow.pid")" 2>/dev/null; then
  die "orderflow from an earlier quickstart still runs (pid $(cat "$state/orderflow.pid")): scripts/quickstart.sh --down"
fi

case "$mode" in
  compose)
    docker compose -f "$compose_file" up -d --build --wait api processor prometheus grafana ||
      die "docker compose up failed: docker compose -f $compose_file logs"
    touch "$state/compose"
    api_url=http://localhost:8000 processor_url=http://localhost:9090
    print_urls
    echo "  prometheus     http://localhost:9091 (alerts: http://localhost:9091/alerts)"
    echo "  grafana        http://localhost:3000 (dashboard orderflow)"
    echo "  stop with      scripts/quickstart.sh --down"
    ;;
  embedded)
    start_orderflow "$(orderflow_bin)"
    print_urls
    echo "  logs           $state/orderflow.log"
    echo "  stop with      scripts/quickstart.sh --down"
    ;;
  aws-moto)
    bin=$(orderflow_bin)
    moto=$(moto_server_bin)
    nohup "$moto" -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
    echo $! >"$state/moto.pid"
    wait_ready "http://127.0.0.1:$moto_port/moto-api/" 60 "$(cat "$state/moto.pid")" ||
      die "moto_server did not start on port $moto_port (log: $state/moto.log)"
    export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_REGION=${AWS_REGION:-us-east-1}
    export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
    exports=$("$bin" init) || die "orderflow init failed"
    printf '%s\n' "$exports" >"$state/aws.env"
    # init prints `export NAME=value ...` lines; take only those.
    while read -r word rest; do
      [ "$word" = export ] || continue
      for kv in $rest; do
        case "$kv" in
          SQS_QUEUE_URL=* | SQS_DLQ_URL=* | DDB_TABLE=*) export "${kv?}" ;;
        esac
      done
    done <<<"$exports"
    if [ -z "${SQS_QUEUE_URL:-}" ] || [ -z "${DDB_TABLE:-}" ]; then
      die "orderflow init printed no SQS_QUEUE_URL and DDB_TABLE: $exports"
    fi
    say "created SQS_QUEUE_URL=$SQS_QUEUE_URL DDB_TABLE=$DDB_TABLE"
    start_orderflow "$bin"
    print_urls
    echo "  moto_server    $AWS_ENDPOINT_URL (settings: $state/aws.env)"
    echo "  logs           $state/orderflow.log, $state/moto.log"
    echo "  stop with      scripts/quickstart.sh --down"
    ;;
esac
