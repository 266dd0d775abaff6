#!/usr/bin/env bash
# Real-client end-to-end tests against examples/chat.rs,
# examples/openai.rs and examples/mercure.rs: Chromium, npm eventsource,
# curl, the openai SDKs (Python and npm), langchain-openai, the AI SDK,
# fetch-event-source.
# Installs what they need if missing (Debian chromium, npm packages from
# tests/clients/package-lock.json, Python packages pinned in
# tests/clients/requirements.txt into tests/clients/.venv), then runs
# tests/clients/run.sh. Idempotent; fails, never skips, when something
# cannot be installed; prints only a summary line on success (VERBOSE=1
# shows every check).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/tests/clients"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

fail_with_log() { cat "$LOG" >&2; echo "clients.sh: $*" >&2; exit 1; }

for tool in node npm curl python3; do
  command -v "$tool" >/dev/null || { echo "clients.sh: $tool not found" >&2; exit 1; }
done

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine's package lists may be empty or stale: update first.
  apt-get update -qq >"$LOG" 2>&1 || fail_with_log "apt-get update failed"
  apt-get install -y -qq chromium >>"$LOG" 2>&1 \
    || fail_with_log "apt-get install chromium failed"
  [ -x /usr/bin/chromium ] || fail_with_log "/usr/bin/chromium still missing after install"
fi

if [ ! -f "$CLIENTS/node_modules/.package-lock.json" ] \
   || [ "$CLIENTS/package-lock.json" -nt "$CLIENTS/node_modules/.package-lock.json" ]; then
  (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error) >"$LOG" 2>&1 \
    || fail_with_log "npm ci in tests/clients failed"
fi

# The venv is remade when requirements.txt changed since it was filled.
VENV="$CLIENTS/.venv"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$CLIENTS/requirements.txt" "$VENV/requirements.txt"; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >"$LOG" 2>&1 || fail_with_log "python3 -m venv $VENV failed"
  "$VENV/bin/pip" install --disable-pip-version-check --no-input -q -r "$CLIENTS/requirements.txt" >>"$LOG" 2>&1 \
    || fail_with_log "pip install -r tests/clients/requirements.txt failed"
  cp "$CLIENTS/requirements.txt" "$VENV/requirements.txt"
fi

if [ "${VERBOSE:-0}" = 1 ]; then
  exec bash "$CLIENTS/run.sh"
fi
if bash "$CLIENTS/run.sh" >"$LOG" 2>&1; then
  tail -n 1 "$LOG"
else
  rc=$?
  cat "$LOG"
  exit "$rc"
fi
