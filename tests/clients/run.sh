#!/usr/bin/env bash
# Real-client end-to-end tests of `examples/chat.rs`: builds and starts the
# example on a free port, then runs Chromium (playwright-core), the npm
# `eventsource` client and curl against it.
#
#   bash tests/clients/run.sh                       # build + start the example
#   BASE=http://127.0.0.1:3000 bash tests/clients/run.sh   # use a running server
#
# Needs: node >= 20, curl, /usr/bin/chromium (or CHROMIUM=...), and
# `npm ci` in tests/clients (done here if node_modules is missing).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LOG_DIR="$(mktemp -d)"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$LOG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "clients: $*" >&2; exit 1; }

if [ ! -d "$HERE/node_modules/playwright-core" ] || [ ! -d "$HERE/node_modules/eventsource" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >"$LOG_DIR/npm.log" 2>&1) \
    || { cat "$LOG_DIR/npm.log" >&2; die "npm ci in tests/clients failed"; }
fi

if [ -z "${BASE:-}" ]; then
  (cd "$ROOT" && cargo build --example chat >"$LOG_DIR/build.log" 2>&1) \
    || { tail -n 60 "$LOG_DIR/build.log" >&2; die "cargo build --example chat failed"; }
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/chat"
  [ -x "$BIN" ] || die "built example not found at $BIN"
  PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
  PORT="$PORT" TOKEN_DELAY_MS="${TOKEN_DELAY_MS:-20}" "$BIN" >"$LOG_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  BASE="http://127.0.0.1:$PORT"
  up=""
  for _ in $(seq 150); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG_DIR/server.log" >&2; die "chat example exited early"; }
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/" || true)"
    [ "$code" = 200 ] && { up=1; break; }
    sleep 0.2
  done
  [ -n "$up" ] || { cat "$LOG_DIR/server.log" >&2; die "chat example did not answer GET / with 200 on $BASE within 30 s"; }
fi
export BASE

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
run node_eventsource node "$HERE/node_eventsource.mjs"
run browser_chat node "$HERE/browser_chat.mjs"

if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
  wait "$SERVER_PID" 2>/dev/null
  echo "clients: the chat example (pid $SERVER_PID) exited during the tests (status $?)"
  total_fail=$((total_fail + 1))
  failed_scripts+=("chat example died")
fi
if [ "${#failed_scripts[@]}" -ne 0 ]; then
  echo "clients: failed: ${failed_scripts[*]}"
  if [ -n "$SERVER_PID" ]; then
    echo "--- chat example log (last 40 lines) ---"; tail -n 40 "$LOG_DIR/server.log"
  fi
fi
echo "clients: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "${#failed_scripts[@]}" -eq 0 ]
