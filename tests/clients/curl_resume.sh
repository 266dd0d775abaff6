#!/usr/bin/env bash
# End-to-end check of the chat example's /chat stream with plain curl:
# headers, retry field at the head, Last-Event-ID resume and 204 at the end.
#   BASE=http://127.0.0.1:3000 bash curl_resume.sh
set -u
BASE="${BASE:-http://127.0.0.1:3000}"
BASE="${BASE%/}"
URL="$BASE/chat?prompt=hi"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   curl_resume: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL curl_resume: $1"; }
# get NAME [curl args...]: body to $TMP/NAME.body, headers to $TMP/NAME.hdr
get() {
  local name="$1"; shift
  curl -sN --max-time 20 -D "$TMP/$name.hdr" -o "$TMP/$name.body" "$@" \
    || echo "curl exit $? for $name" >>"$TMP/errors"
  tr -d '\r' <"$TMP/$name.hdr" >"$TMP/$name.h"
}
status() { head -n1 "$TMP/$1.h" | awk '{print $2}'; }
has_header() { grep -qiE "^$2:[[:space:]]*$3" "$TMP/$1.h"; }
first_id() { grep -m1 -E '^id:' "$TMP/$1.body" | tr -d '\r'; }

# 1. full stream: status, headers, retry first, n tokens + done.
get full "$URL"
st="$(status full)"
[ "$st" = 200 ] && ok "full stream status 200" || bad "full stream status '$st', want 200"
for h in 'content-type:text/event-stream' 'cache-control:no-cache, no-transform' 'x-accel-buffering:no'; do
  name="${h%%:*}"; value="${h#*:}"
  if has_header full "$name" "$value"; then ok "header $name: $value"
  else bad "header $name: $value missing; headers were: $(tr '\n' '|' <"$TMP/full.h")"; fi
done
if head -c 7 "$TMP/full.body" | grep -q '^retry: '; then ok "body starts with 'retry: '"
else bad "body starts with $(head -c 40 "$TMP/full.body" | od -c | head -2 | tr '\n' ' '), want 'retry: '"; fi
n="$(grep -c '^event: token' "$TMP/full.body")"
done_id="$(grep -A1 '^event: done' "$TMP/full.body" | grep -m1 '^id:' | sed 's/^id: *//' | tr -d '\r')"
if [ "$n" -gt 3 ] && [ "$done_id" = "$((n + 1))" ]; then ok "full stream has $n tokens then done id $done_id"
else bad "full stream: $n tokens, done id '$done_id' (want > 3 tokens and done id n+1)"; n=12; fi

# 2. Last-Event-ID: 3 resumes at token 4 (header, then the query form).
get resume "$URL" -H 'Last-Event-ID: 3'
fid="$(first_id resume)"
[ "$fid" = "id: 4" ] && ok "Last-Event-ID: 3 starts at 'id: 4'" || bad "Last-Event-ID: 3: first id line '$fid', want 'id: 4'"
rn="$(grep -c '^event: token' "$TMP/resume.body")"
[ "$rn" = "$((n - 3))" ] && ok "Last-Event-ID: 3 sends the remaining $rn tokens" || bad "Last-Event-ID: 3 sent $rn tokens, want $((n - 3))"
get resumeq "$URL&lastEventId=3"
fid="$(first_id resumeq)"
[ "$fid" = "id: 4" ] && ok "?lastEventId=3 starts at 'id: 4'" || bad "?lastEventId=3: first id line '$fid', want 'id: 4'"

# 3. Last-Event-ID: n+1 (the done id) gives 204.
get ended "$URL" -H "Last-Event-ID: $((n + 1))"
st="$(status ended)"
[ "$st" = 204 ] && ok "Last-Event-ID: $((n + 1)) gives 204" || bad "Last-Event-ID: $((n + 1)) gave status '$st', want 204"

[ -s "$TMP/errors" ] && cat "$TMP/errors"
echo "curl_resume: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
