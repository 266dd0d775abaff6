#!/usr/bin/env bash
# Checks that `rust-version` in Cargo.toml is honest about dependencies: on
# a copy of the crate without its dev-dependencies and benches, Cargo's
# MSRV-aware resolver picks the newest version of every dependency that
# declares a rust-version no newer than ours; every package of that tree
# must then declare one no newer than ours (a dependency with none declares
# nothing to check), and the crate must build against exactly those versions.
#
# What this leaves to clippy: our own code's use of the standard library,
# which `incompatible_msrv` checks against the same rust-version in the
# clippy step. Language features newer than rust-version (none is used: no
# `#[expect]`, no exclusive range patterns, no associated type bounds, no
# `use<..>`) have no lint and are checked by review.
set -euo pipefail
cd "$(dirname "$0")/.."

msrv="$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["packages"][0]["rust_version"])')"
echo "rust-version: $msrv"

dir="$(mktemp -d "${TMPDIR:-/tmp}/axum-sse-msrv.XXXXXX")"
trap 'rm -rf "$dir"' EXIT
cp -r Cargo.toml README.md CHANGELOG.md src "$dir/"
# Users never build dev-dependencies, benches or examples: drop their tables.
python3 - "$dir/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
out, skip = [], False
for line in open(path):
    if re.match(r"\s*\[", line):
        skip = line.strip() in ("[dev-dependencies]", "[[bench]]", "[[example]]")
    if not skip:
        out.append(line)
open(path, "w").writelines(out)
PY

CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
  cargo generate-lockfile --quiet --manifest-path "$dir/Cargo.toml"

cargo metadata --all-features --format-version 1 --locked --manifest-path "$dir/Cargo.toml" \
  | python3 -c '
import json, sys
msrv = tuple(int(x) for x in sys.argv[1].split("."))
meta = json.load(sys.stdin)
used = {node["id"] for node in meta["resolve"]["nodes"]}
newer = [
    "  %s %s needs Rust %s" % (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] in used and p["rust_version"]
    and tuple(int(x) for x in p["rust_version"].split(".")) > msrv
]
if newer:
    print(f"error: no dependency tree builds on Rust {sys.argv[1]}:", *newer, sep="\n")
    print("Raise rust-version in Cargo.toml (and the README) until this check passes.")
    sys.exit(1)
print(f"all {len(used)} packages of the tree allow Rust {sys.argv[1]}")
' "$msrv"

# The code against those (older) versions, with every feature.
cargo check --quiet --locked --all-features --manifest-path "$dir/Cargo.toml" \
  --target-dir "$PWD/target/msrv"
echo "the crate builds against the dependency versions Rust $msrv gets"
