#!/usr/bin/env bash
# End-to-end check of the feed example's Prometheus scrape with plain curl
# (the example built with `--features metrics`): a subscriber, a publish,
# then `GET /metrics` answers the text format with every metric of
# `axum_sse::metrics`, and the counters moved.
#   FEED_BASE=http://127.0.0.1:3000 bash curl_metrics.sh
set -u
BASE="${FEED_BASE:-http://127.0.0.1:3000}"
BASE="${BASE%/}"
TMP="$(mktemp -d)"
SUB_PID=""
cleanup() {
  [ -n "$SUB_PID" ] && kill "$SUB_PID" 2>/dev/null && wait "$SUB_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   curl_metrics: $1"; }
bad() { fail=$((fail + 1)); echo "FAIL curl_metrics: $1"; }

# A subscriber that stays, and one event published to it.
curl -sN --max-time 20 "$BASE/events" >"$TMP/events" 2>/dev/null &
SUB_PID=$!
for _ in $(seq 50); do
  curl -s "$BASE/metrics" | grep -q '^sse_broadcast_subscribers [1-9]' && break
  sleep 0.1
done
id="$(curl -s -d 'metrics check' "$BASE/publish")"
[ -n "$id" ] && ok "published as $id" || bad "publish answered nothing"
for _ in $(seq 50); do grep -q 'data: metrics check' "$TMP/events" && break; sleep 0.1; done
grep -q 'data: metrics check' "$TMP/events" && ok "the subscriber got the event" \
  || bad "the subscriber got $(head -c 200 "$TMP/events")"

curl -s -D "$TMP/hdr" -o "$TMP/metrics" --max-time 5 "$BASE/metrics"
st="$(head -n1 "$TMP/hdr" | awk '{print $2}')"
[ "$st" = 200 ] && ok "GET /metrics 200" || bad "GET /metrics status '$st', want 200"
if tr -d '\r' <"$TMP/hdr" | grep -qi '^content-type: text/plain'; then ok "content-type text/plain"
else bad "content-type: $(tr -d '\r' <"$TMP/hdr" | grep -i '^content-type')"; fi

for line in \
  '# TYPE sse_streams_open gauge' \
  '# TYPE sse_streams_opened_total counter' \
  '# TYPE sse_streams_rejected_total counter' \
  '# TYPE sse_streams_closed_total counter' \
  '# TYPE sse_stream_duration_seconds histogram' \
  '# TYPE sse_sent_events_total counter' \
  '# TYPE sse_sent_bytes_total counter' \
  '# TYPE sse_send_wait_seconds histogram' \
  '# TYPE sse_broadcast_subscribers gauge' \
  '# TYPE sse_broadcast_published_total counter' \
  '# TYPE sse_broadcast_slow_disconnects_total counter' \
  '# TYPE sse_broadcast_missed_resumes_total counter' \
  '# TYPE sse_broadcast_delivery_seconds histogram' \
  'sse_streams_closed_total{reason="client_gone"} ' \
  'sse_streams_rejected_total{reason="limit"} 0'; do
  if grep -qF -- "$line" "$TMP/metrics"; then ok "has '$line'"
  else bad "no '$line' in /metrics"; fi
done
if grep -qE '^sse_streams_open [1-9]' "$TMP/metrics"; then ok "a stream is open"
else bad "sse_streams_open: $(grep '^sse_streams_open ' "$TMP/metrics")"; fi
if grep -qE '^sse_broadcast_published_total [1-9]' "$TMP/metrics"; then ok "a publish is counted"
else bad "sse_broadcast_published_total: $(grep '^sse_broadcast_published_total' "$TMP/metrics")"; fi
if grep -qE '^sse_broadcast_delivery_seconds_bucket\{le="\+Inf"\} [1-9]' "$TMP/metrics"; then
  ok "a delivery is in the histogram's buckets"
else bad "delivery buckets: $(grep '^sse_broadcast_delivery_seconds_bucket' "$TMP/metrics" | tail -n1)"; fi

echo "curl_metrics: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
