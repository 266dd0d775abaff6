#!/usr/bin/env bash
# Real-client end-to-end tests of `examples/chat.rs`, `examples/openai.rs`
# and `examples/mercure.rs` (and, with curl, the Prometheus scrape of
# `examples/feed.rs`): builds and starts the examples on free ports, then
# runs against them
# Chromium (playwright-core), the npm `eventsource` client, curl, the AI SDK
# (`ai`), the `openai` SDKs for Node and Python, `langchain-openai` and
# `@microsoft/fetch-event-source`.
#
#   bash tests/clients/run.sh                       # build + start the examples
#   BASE=http://127.0.0.1:3000 OPENAI_BASE=http://127.0.0.1:3001 \
#   MERCURE_BASE=http://127.0.0.1:3002 MERCURE_PUBLISHER_JWT_KEY=... \
#     bash tests/clients/run.sh                     # use running servers
#
# The mercure example runs with its own publisher and subscriber keys
# (MERCURE_PUBLISHER_JWT_KEY, MERCURE_SUBSCRIBER_JWT_KEY), which the curl
# and Chromium checks sign their tokens with; with REDIS_URL set (as
# .ci/run sets it) a second instance on the same Redis (MERCURE_BASE2)
# checks that two instances are one hub.
#
# With REDIS_URL set, two more chat instances on that Redis (CHAT_BASE_A,
# CHAT_BASE_B; TOKEN_DELAY_MS=100, TWO_TOKEN_DELAY_MS to change it) check
# that a reply started on one resumes on the other (node_two_instances,
# browser_two_instances).
# With CI set and no REDIS_URL, those checks fail rather than skip.
#
# The openai example runs with HEARTBEAT_MS=50 and a longer TOKEN_DELAY_MS
# (OPENAI_TOKEN_DELAY_MS, default 80), so heartbeats fire between every two
# tokens of every reply.
#
# Needs: node >= 20, curl, python3, /usr/bin/chromium (or CHROMIUM=...),
# `npm ci` in tests/clients and the venv tests/clients/.venv from
# requirements.txt (both done here if missing; .ci/clients.sh keeps them
# current).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOG_DIR="$(mktemp -d)"
SERVER_PIDS=()
SERVER_NAMES=()

cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  rm -rf "$LOG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "clients: $*" >&2; exit 1; }

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/openai" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >"$LOG_DIR/npm.log" 2>&1) \
    || { cat "$LOG_DIR/npm.log" >&2; die "npm ci in tests/clients failed"; }
fi
PYTHON="$HERE/.venv/bin/python"
if [ ! -x "$PYTHON" ]; then
  { python3 -m venv "$HERE/.venv" \
      && "$HERE/.venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$HERE/requirements.txt" \
      && cp "$HERE/requirements.txt" "$HERE/.venv/requirements.txt"; } >"$LOG_DIR/pip.log" 2>&1 \
    || { cat "$LOG_DIR/pip.log" >&2; die "creating tests/clients/.venv from requirements.txt failed"; }
fi

# start_example NAME[@LABEL] PROBE_PATH [VAR=VALUE...]: starts the built
# example NAME on a free port with the given environment, waits until GET
# PROBE_PATH answers 200, and sets STARTED_BASE. LABEL tells apart two
# instances of one example (their logs: NAME@LABEL.log).
start_example() {
  local label="$1" probe="$2"; shift 2
  local name="${label%%@*}"
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/$name"
  [ -x "$bin" ] || die "built example not found at $bin"
  local port
  port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
  env PORT="$port" "$@" "$bin" >"$LOG_DIR/$label.log" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  SERVER_NAMES+=("$label")
  STARTED_BASE="http://127.0.0.1:$port"
  local code
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || { cat "$LOG_DIR/$label.log" >&2; die "$label example exited early"; }
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$STARTED_BASE$probe" || true)"
    [ "$code" = 200 ] && return 0
    sleep 0.2
  done
  cat "$LOG_DIR/$label.log" >&2
  die "$label example did not answer GET $probe with 200 on $STARTED_BASE within 30 s"
}

# With REDIS_URL, two chat instances on it (unless given as CHAT_BASE_A/B).
two_chats=""
[ -n "${REDIS_URL:-}" ] && { [ -z "${CHAT_BASE_A:-}" ] || [ -z "${CHAT_BASE_B:-}" ]; } && two_chats=1
if [ -z "${BASE:-}" ] || [ -z "${OPENAI_BASE:-}" ] || [ -z "${MERCURE_BASE:-}" ] || [ -n "$two_chats" ]; then
  # With REDIS_URL the mercure and chat examples run as two instances over Redis.
  features=hub
  [ -n "${REDIS_URL:-}" ] && features=hub,redis
  (cd "$ROOT" && cargo build --features "$features" --example chat --example openai --example mercure >"$LOG_DIR/build.log" 2>&1) \
    || { tail -n 60 "$LOG_DIR/build.log" >&2; die "cargo build --features $features --example chat --example openai --example mercure failed"; }
fi
# The feed example with its Prometheus scrape (FEED_BASE: a running one).
if [ -z "${FEED_BASE:-}" ]; then
  # With REDIS_URL set (as CI sets it) the feed keeps its topics in Redis.
  feed_features="metrics${REDIS_URL:+,redis}"
  (cd "$ROOT" && cargo build --features "$feed_features" --example feed >>"$LOG_DIR/build.log" 2>&1) \
    || { tail -n 60 "$LOG_DIR/build.log" >&2; die "cargo build --features $feed_features --example feed failed"; }
fi
if [ -z "${BASE:-}" ]; then
  start_example chat / TOKEN_DELAY_MS="${TOKEN_DELAY_MS:-20}"
  BASE="$STARTED_BASE"
fi
if [ -z "${OPENAI_BASE:-}" ]; then
  start_example openai /v1/models HEARTBEAT_MS=50 TOKEN_DELAY_MS="${OPENAI_TOKEN_DELAY_MS:-80}"
  OPENAI_BASE="$STARTED_BASE"
fi
if [ -z "${FEED_BASE:-}" ]; then
  start_example feed /metrics
  FEED_BASE="$STARTED_BASE"
fi
if [ -z "${MERCURE_BASE:-}" ]; then
  MERCURE_PUBLISHER_JWT_KEY="publisher-$RANDOM$RANDOM"
  MERCURE_SUBSCRIBER_JWT_KEY="subscriber-$RANDOM$RANDOM"
  start_example mercure / MERCURE_PUBLISHER_JWT_KEY="$MERCURE_PUBLISHER_JWT_KEY" \
    MERCURE_SUBSCRIBER_JWT_KEY="$MERCURE_SUBSCRIBER_JWT_KEY" REDIS_URL="${REDIS_URL:-}"
  MERCURE_BASE="$STARTED_BASE"
  if [ -n "${REDIS_URL:-}" ]; then
    start_example mercure@2 / MERCURE_PUBLISHER_JWT_KEY="$MERCURE_PUBLISHER_JWT_KEY" \
      MERCURE_SUBSCRIBER_JWT_KEY="$MERCURE_SUBSCRIBER_JWT_KEY" REDIS_URL="$REDIS_URL"
    MERCURE_BASE2="$STARTED_BASE"
  fi
fi
if [ -n "$two_chats" ]; then
  start_example chat@A / REDIS_URL="$REDIS_URL" TOKEN_DELAY_MS="${TWO_TOKEN_DELAY_MS:-100}"
  CHAT_BASE_A="$STARTED_BASE"
  start_example chat@B / REDIS_URL="$REDIS_URL" TOKEN_DELAY_MS="${TWO_TOKEN_DELAY_MS:-100}"
  CHAT_BASE_B="$STARTED_BASE"
fi
export BASE OPENAI_BASE FEED_BASE MERCURE_BASE MERCURE_BASE2 MERCURE_PUBLISHER_JWT_KEY MERCURE_SUBSCRIBER_JWT_KEY
export CHAT_BASE_A CHAT_BASE_B

# The MCP example (examples/mcp.rs) for the official MCP SDKs: its tool
# call streams close every MCP_CLOSE_AFTER_MS with `retry: MCP_RETRY_MS`
# (MCP_BASE: a running one, started with the same two values).
export MCP_CLOSE_AFTER_MS="${MCP_CLOSE_AFTER_MS:-1000}" MCP_RETRY_MS="${MCP_RETRY_MS:-100}"
if [ -z "${MCP_BASE:-}" ]; then
  (cd "$ROOT" && cargo build --example mcp >>"$LOG_DIR/build.log" 2>&1) \
    || { tail -n 60 "$LOG_DIR/build.log" >&2; die "cargo build --example mcp failed"; }
  start_example mcp / CLOSE_AFTER_MS="$MCP_CLOSE_AFTER_MS" RETRY_MS="$MCP_RETRY_MS"
  MCP_BASE="$STARTED_BASE"
fi
export MCP_BASE

total_pass=0
total_fail=0
failed_scripts=()
run() {
  local name="$1"; shift
  local out="$LOG_DIR/$name.out"
  "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local summary p f
  summary="$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1)"
  if [ -n "$summary" ]; then
    p="$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$summary")"
    f="$(sed -E 's/.*, ([0-9]+) failed$/\1/' <<<"$summary")"
  else
    p=0; f=1
  fi
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  [ "$rc" -ne 0 ] && failed_scripts+=("$name (exit $rc)")
}

run curl_resume bash "$HERE/curl_resume.sh"
run curl_metrics bash "$HERE/curl_metrics.sh"
run node_eventsource node "$HERE/node_eventsource.mjs"
run browser_chat node "$HERE/browser_chat.mjs"
run node_ai_sdk node "$HERE/node_ai_sdk.mjs"
run node_openai node "$HERE/node_openai.mjs"
run node_fetch_event_source node "$HERE/node_fetch_event_source.mjs"
run python_openai "$PYTHON" "$HERE/python_openai.py"
run python_langchain "$PYTHON" "$HERE/python_langchain.py"
run curl_mercure bash "$HERE/curl_mercure.sh"
run browser_mercure node "$HERE/browser_mercure.mjs"
# Two chat instances on one Redis; under CI it runs (and fails) without one.
if [ -n "${REDIS_URL:-}" ] || [ -n "${CHAT_BASE_B:-}" ] || [ -n "${CI:-}" ]; then
  run node_two_instances node "$HERE/node_two_instances.mjs"
  run browser_two_instances node "$HERE/browser_two_instances.mjs"
fi
run node_mcp node "$HERE/node_mcp.mjs"
run python_mcp "$PYTHON" "$HERE/python_mcp.py"

for i in "${!SERVER_PIDS[@]}"; do
  pid="${SERVER_PIDS[$i]}"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    echo "clients: the ${SERVER_NAMES[$i]} example (pid $pid) exited during the tests (status $?)"
    total_fail=$((total_fail + 1))
    failed_scripts+=("${SERVER_NAMES[$i]} example died")
  fi
done
if [ "${#failed_scripts[@]}" -ne 0 ]; then
  echo "clients: failed: ${failed_scripts[*]}"
  for name in "${SERVER_NAMES[@]}"; do
    echo "--- $name example log (last 40 lines) ---"; tail -n 40 "$LOG_DIR/$name.log"
  done
fi
echo "clients: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "${#failed_scripts[@]}" -eq 0 ]
