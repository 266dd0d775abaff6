#!/usr/bin/env bash
# Starts a throwaway redis-server on a free loopback port for the Redis tests
# (`tests/broadcast_redis.rs`), installing it with apt first if it is missing.
#
#   eval "$(.ci/redis.sh)"     # exports REDIS_URL, REDIS_PORT, REDIS_PID
#   trap 'kill "$REDIS_PID"' EXIT
#
# The server runs in the background and keeps nothing on disk (`--save ''
# --appendonly no`; pidfile and log in a temp dir). Progress goes to stderr;
# stdout carries only the `export` line. The restart test in
# tests/broadcast_redis.rs starts a redis-server of its own, so it needs the
# binary this script installs.
set -euo pipefail

log() { printf 'redis.sh: %s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/axum-sse-redis.XXXXXX")"
started=""
for _ in 1 2 3 4 5; do
  port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --daemonize yes >&2 || continue
  for _ in $(seq 50); do
    if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; then
      started=1
      break 2
    fi
    sleep 0.1
  done
  log "no answer on port $port; trying another"
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
done
if [ -z "$started" ]; then
  log "could not start redis-server; its log:"
  cat "$dir/redis.log" >&2 || true
  exit 1
fi

pid="$(cat "$dir/redis.pid")"
log "redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port (pid $pid, dir $dir)"
export REDIS_URL="redis://127.0.0.1:$port/" REDIS_PORT="$port" REDIS_PID="$pid"
printf 'export REDIS_URL=%q REDIS_PORT=%q REDIS_PID=%q\n' "$REDIS_URL" "$REDIS_PORT" "$REDIS_PID"
