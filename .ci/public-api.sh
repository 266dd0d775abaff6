#!/usr/bin/env bash
# The crate's public API, every feature on, as `cargo public-api` lists it
# (one item a line; blanket impls left out, auto traits kept: losing `Send`
# breaks users too). `.ci/public-api.txt` holds the reviewed listing, so a
# change to the surface shows up as a diff of that file in review.
#
#   .ci/public-api.sh           # check: fails when the API differs
#   .ci/public-api.sh --update  # rewrite .ci/public-api.txt
#
# cargo-public-api reads rustdoc's JSON, whose format changes with nightly:
# 0.52 reads that of nightly-2025-08-02 onward (format 57 here). A newer
# nightly that it cannot read fails here; pin a newer version then.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.52.0
listing=.ci/public-api.txt

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "error: no nightly toolchain (cargo +nightly): rustdoc's JSON output needs one" >&2
  exit 1
fi
if [ "$(cargo public-api --version 2>/dev/null)" != "cargo-public-api $version" ]; then
  echo "installing cargo-public-api $version" >&2
  cargo install --locked --quiet "cargo-public-api@$version" \
    || { echo "error: could not install cargo-public-api $version" >&2; exit 1; }
fi

current="$(mktemp "${TMPDIR:-/tmp}/axum-sse-public-api.XXXXXX")"
trap 'rm -f "$current"' EXIT
cargo +nightly public-api --all-features --omit blanket-impls --color never >"$current"

if [ "${1:-}" = "--update" ]; then
  cp "$current" "$listing"
  echo "wrote $listing ($(wc -l <"$listing") lines)"
elif ! diff -u "$listing" "$current"; then
  cat >&2 <<MSG

error: the public API differs from $listing (diff above: - listed, + now).
If the change is intended, regenerate the listing and commit it with the
change (and a CHANGELOG line; a removed or changed line is breaking):
    .ci/public-api.sh --update
MSG
  exit 1
else
  echo "public API matches $listing ($(wc -l <"$listing") lines)"
fi
