#!/usr/bin/env bash
# What the in-memory catalogue of N applications costs, by allocation site: seeds a sled store
# with N placeholder applications (examples/seed_store.rs), loads it the way `serve` does
# (examples/catalog_heap.rs, on the system allocator, which heaptrack intercepts) and prints the
# heap still held after loading, with the largest holders.
#
# env: APPS (100000), TOP (12)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
APPS=${APPS:-100000}; TOP=${TOP:-12}
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack; }
WORK=$(mktemp -d /tmp/appauth-heap.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet --example seed_store --example catalog_heap
"$ROOT/target/release/examples/seed_store" "$WORK/data" "$APPS" >/dev/null
(cd "$WORK" && heaptrack -o "$WORK/heap" "$ROOT/target/release/examples/catalog_heap" "$WORK/data" >/dev/null)
heaptrack_print -f "$WORK"/heap.*zst 2>/dev/null | grep -E "^(peak heap memory consumption|total memory leaked)" \
  | sed 's/total memory leaked/held after loading (never freed before exit)/'
echo "largest holders after loading (size, allocations, the first frame in this crate):"
heaptrack_print --print-leaks 1 --print-peaks 0 --print-allocators 0 --print-temporary 0 -f "$WORK"/heap.*zst 2>/dev/null \
  | awk '/leaked over .* calls from:$/ {size=$1; calls=$4; want=1; prev=""; next}
         want && /^ +at (src|crates)\// {sub(/^ +at /, ""); print size "\t" calls "\t" $0 " (" prev ")"; want=0; next}
         want && /^    [^ ]/ {prev=$1}' \
  | sort -h -r | head -n "$TOP"
