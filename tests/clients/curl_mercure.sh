#!/usr/bin/env bash
# End-to-end check of examples/mercure.rs with plain curl: publish answers
# (200 text/plain with the id, 400, 401, 403 and their challenges), tokens
# of both kinds (at+jwt authorization_details, the older mercure claim) in
# the header and the cookie, private updates, Last-Event-ID and earliest,
# the wire byte for byte.
#   MERCURE_BASE=http://127.0.0.1:3002 MERCURE_PUBLISHER_JWT_KEY=... bash curl_mercure.sh
set -u
BASE="${MERCURE_BASE:-http://127.0.0.1:3000}"
HUB="${BASE%/}/.well-known/mercure"
PK="${MERCURE_PUBLISHER_JWT_KEY:?MERCURE_PUBLISHER_JWT_KEY is not set}"
SK="${MERCURE_SUBSCRIBER_JWT_KEY:-$PK}"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   curl_mercure: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL curl_mercure: $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got $(printf %q "$2"), want $(printf %q "$3")"; fi; }

# jwt KEY TYP CLAIMS_JSON: an HS256 JWS (exp an hour ahead unless given).
jwt() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, sys, time
key, typ, claims = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
claims.setdefault("exp", int(time.time()) + 3600)
enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
body = enc(json.dumps({"alg": "HS256", "typ": typ}).encode()) + "." + enc(json.dumps(claims).encode())
print(body + "." + enc(hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()))
PY
}
detail() { echo "{\"type\":\"https://mercure.rocks/authorization-detail\",\"actions\":[\"$1\"],\"topics\":[$2]}"; }
T='https://example.com/curl'
PUB="$(jwt "$PK" at+jwt "{\"authorization_details\":[$(detail publish "{\"match\":\"$T/:id\",\"match_type\":\"urlpattern\"}")]}")"
LEGACY_PUB="$(jwt "$PK" JWT '{"mercure":{"publish":["*"]}}')"
READER="$(jwt "$SK" at+jwt "{\"authorization_details\":[$(detail subscribe "{\"match\":\"$T/private\"}")]}")"
EXPIRED="$(jwt "$PK" at+jwt "{\"exp\":1000,\"authorization_details\":[$(detail publish '{"match":"*"}')]}")"
WRONG_KEY="$(jwt "not-the-key" at+jwt "{\"authorization_details\":[$(detail publish '{"match":"*"}')]}")"

# post NAME [curl args...]: status, then headers and body in $TMP/NAME.*
post() {
  local name="$1"; shift
  curl -s --max-time 10 -D "$TMP/$name.hdr" -o "$TMP/$name.body" -w '%{http_code}' -X POST "$HUB" "$@"
  tr -d '\r' <"$TMP/$name.hdr" >"$TMP/$name.h"
}
header() { grep -i "^$2:" "$TMP/$1.h" | head -n1 | sed -E 's/^[^:]+:[[:space:]]*//'; }

# 1. Publishing: who may, and the answers.
check "publish without a token: 401" "$(post none -d "topic=$T/1")" 401
check "  with WWW-Authenticate: Bearer" "$(header none www-authenticate)" "Bearer"
check "publish with a wrong key: 401" "$(post wrong -H "Authorization: Bearer $WRONG_KEY" -d "topic=$T/1")" 401
check "  error=\"invalid_token\"" "$(header wrong www-authenticate)" 'Bearer error="invalid_token"'
check "publish with an expired token: 401" "$(post expired -H "Authorization: Bearer $EXPIRED" -d "topic=$T/1")" 401
check "publish with a subscriber's token: 401 (other key) or 403" \
  "$( [ "$SK" = "$PK" ] && echo 403 || echo 401)" "$(post reader -H "Authorization: Bearer $READER" -d "topic=$T/1")"
check "publish outside the token's topics: 403" \
  "$(post scope -H "Authorization: Bearer $PUB" -d "topic=$T/1" -d 'topic=https://example.com/elsewhere')" 403
check "  error=\"insufficient_scope\"" "$(header scope www-authenticate)" 'Bearer error="insufficient_scope"'
check "publish without a topic: 400" "$(post notopic -H "Authorization: Bearer $PUB" -d 'data=x')" 400
check "publish with type=mercure: 400" "$(post reserved -H "Authorization: Bearer $PUB" -d "topic=$T/1" -d type=mercure)" 400
check "publish with retry=1s: 400" "$(post retry -H "Authorization: Bearer $PUB" -d "topic=$T/1" -d retry=1s)" 400
check "publish into the hub's namespace: 400" \
  "$(post ns -H "Authorization: Bearer $LEGACY_PUB" -d 'topic=/.well-known/%6Dercure/subscriptions')" 400

# 2. A subscriber (curl -N) reads the stream as it comes.
subscribe() { # NAME QUERY [curl args...]
  local name="$1" query="$2"; shift 2
  curl -sN --max-time 20 -D "$TMP/$name.shdr" -o "$TMP/$name.stream" "$@" "$HUB?$query" &
  PIDS+=($!)
}
wait_for() { # NAME TEXT
  for _ in $(seq 100); do grep -qF "$2" "$TMP/$1.stream" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.urlencode([tuple(a.split("=", 1)) for a in sys.argv[1:]]))' "$@"; }
subscribe anon "$(enc "match=$T/1" "match_urlpattern=$T/:id")"
subscribe cookie "$(enc "match_urlpattern=$T/:id")" --cookie "mercureAuthorization=$READER"
subscribe other "$(enc "match=$T/other" "match=$T/end")"
sleep 1
CUSTOM="urn:curl:$RANDOM$RANDOM" # unique: a hub over Redis keeps its history across runs
id1="$(post p1 -H "Authorization: Bearer $PUB" -d "topic=$T/1" --data-urlencode $'data=two\nlines' -d type=note -d retry=2500 -d id="$CUSTOM" >/dev/null; cat "$TMP/p1.body")"
check "publish answers the publisher's id" "$id1" "$CUSTOM"
check "  as text/plain; charset=utf-8" "$(header p1 content-type)" "text/plain; charset=utf-8"
code="$(post p2 -H "Authorization: Bearer $LEGACY_PUB" -d "topic=$T/private" -d data=SECRET -d private=on)"
check "publish a private update with the older mercure claim: 200" "$code" 200
id2="$(cat "$TMP/p2.body")"
post p3 -H "Authorization: Bearer $PUB" -d "topic=$T/end" -d data=end >/dev/null
id3="$(cat "$TMP/p3.body")"
[ -n "$id2" ] && [ -n "$id3" ] && ok "hub-assigned ids returned" || bad "empty ids: '$id2' '$id3'"
wait_for anon "data: end" && wait_for cookie "data: end" && wait_for other "data: end" \
  && ok "every subscriber got the last update" || bad "a subscriber did not get the last update"
one=$'event: note\nretry: 2500\ndata: two\ndata: lines\nid: '"$CUSTOM"$'\n\n'
secret=$'data: SECRET\nid: '"$id2"$'\n\n'
end=$'data: end\nid: '"$id3"$'\n\n'
# Without the trailing newlines command substitution strips, hence the x.
check "anonymous: the update once (two selectors match), no private one, byte for byte" \
  "$(cat "$TMP/anon.stream"; echo x)" "${one}${end}x"
check "the cookie's token reads the private update" "$(cat "$TMP/cookie.stream"; echo x)" "${one}${secret}${end}x"
check "a non-matching subscriber gets nothing else" "$(cat "$TMP/other.stream"; echo x)" "${end}x"
check "subscribe answers text/event-stream" "$(tr -d '\r' <"$TMP/anon.shdr" | grep -i '^content-type:' | sed -E 's/^[^:]+:[[:space:]]*//')" "text/event-stream"

# 3. Resume: Last-Event-ID header, the query parameter, earliest.
resume() { # NAME QUERY [curl args]: reads until the `end` update (up to 3 s).
  curl -sN --max-time 3 -D "$TMP/$1.rh" -o "$TMP/$1.stream" "${@:3}" "$HUB?$2"
  tr -d '\r' <"$TMP/$1.rh" >"$TMP/$1.rhh"
}
resume r1 "$(enc "match_urlpattern=$T/:id")" -H "Last-Event-ID: $CUSTOM"
check "Last-Event-ID: the publisher's id resumes after it (anonymous: no private update)" "$(cat "$TMP/r1.stream"; echo x)" "${end}x"
check "  Mercure-Last-Event-ID is that id" "$(grep -i '^mercure-last-event-id:' "$TMP/r1.rhh" | sed -E 's/^[^:]+:[[:space:]]*//')" "$CUSTOM"
resume r2 "$(enc "match_urlpattern=$T/:id" "last_event_id=$id2")" -H "Authorization: Bearer $READER"
check "last_event_id query parameter resumes" "$(cat "$TMP/r2.stream"; echo x)" "${end}x"
resume r3 "$(enc "match_urlpattern=$T/:id" "last_event_id=earliest")" -H "Authorization: Bearer $READER"
if grep -qF "$(printf '%s' "$one$secret$end")" "$TMP/r3.stream"; then ok "earliest replays the history, private included for its reader"
else bad "earliest replayed $(printf %q "$(cat "$TMP/r3.stream")")"; fi
check "  Mercure-Last-Event-ID: earliest" "$(grep -i '^mercure-last-event-id:' "$TMP/r3.rhh" | sed -E 's/^[^:]+:[[:space:]]*//')" "earliest"
# 4. Two instances over one Redis are one hub (run.sh starts the second).
if [ -n "${MERCURE_BASE2:-}" ]; then
  HUB2="${MERCURE_BASE2%/}/.well-known/mercure"
  curl -sN --max-time 20 -o "$TMP/two.stream" "$HUB2?$(enc "match=$T/two")" &
  PIDS+=($!)
  sleep 1
  post x1 -H "Authorization: Bearer $PUB" -d "topic=$T/two" -d data=across >/dev/null
  xid="$(cat "$TMP/x1.body")"
  wait_for two "data: across"
  check "an update published on one instance reaches a subscriber of the other" \
    "$(cat "$TMP/two.stream"; echo x)" $'data: across\nid: '"$xid"$'\n\nx'
  curl -sN --max-time 3 -o "$TMP/two_resume.stream" -H "Last-Event-ID: $CUSTOM" "$HUB2?$(enc "match_urlpattern=$T/:id")"
  check "an id of one instance resumes on the other" "$(cat "$TMP/two_resume.stream"; echo x)" "${end}"$'data: across\nid: '"$xid"$'\n\nx'
elif [ -n "${CI:-}" ]; then
  bad "CI is set but MERCURE_BASE2 is not: run with REDIS_URL so run.sh starts two instances over Redis"
else
  echo "note curl_mercure: MERCURE_BASE2 not set: skipping the two-instance check (set REDIS_URL for run.sh)"
fi
check "an unknown matcher type: 400" "$(curl -s -o /dev/null -w '%{http_code}' "$HUB?match_regex=x")" 400

echo "curl_mercure: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
