#!/usr/bin/env bash
# Token latency while heavy admin list queries run (issue 12: list work must not stall the token
# endpoint). 100,000 applications (90,000 seeded offline + the admin), then, alternated:
#   A: token load alone;  B: the same token load while LISTERS clients loop over
#   full-directory list queries (substring search + sort over 100,000 rows, 500 per page, and a
#   20,000-row CSV export).
# Prints token p50/p99 for A and B and the p99 ratio B/A (target <= 2).
#
# env: DUR (10 s), CONC (16), REPS (3), LISTERS (4)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}; CONC=${CONC:-16}; REPS=${REPS:-3}; LISTERS=${LISTERS:-4}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=$(mktemp -d /tmp/appauth-mixed.XXXXXX)
BASE=http://127.0.0.1:18083
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release --quiet --features loadgen --bin appauth --example seed_store
cd "$WORK"
"$ROOT/target/release/examples/seed_store" data 90000 >/dev/null
# The list loops are one admin caller: lift its request limit for the benchmark.
APPAUTH_LIMITS_ADMIN_REQUESTS_PER_MINUTE=1000000 "$ROOT/target/release/appauth" serve --listen 127.0.0.1:18083 >server.log 2>&1 &
SERVER=$!
PIDS+=($SERVER)
until curl -sf $BASE/readyz >/dev/null; do kill -0 $SERVER 2>/dev/null || { cat server.log >&2; exit 1; }; sleep 0.05; done
CREDS=$(jq -r '.clientId + ":" + .secret' data/initial-admin.json)
TOKEN=$(curl -s -u "$CREDS" -d grant_type=client_credentials $BASE/oauth/token | jq -r .access_token)

listers() {
  for i in $(seq "$LISTERS"); do
    (while true; do
      curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/apps?search=seeded-0&sortBy=name&sortOrder=desc&limit=500"
      curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/apps?filterBy=name%3D%40ed-1&sortBy=createdAt&limit=500"
      curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H "Accept: text/csv" "$BASE/api/v1/apps?filterBy=name%3D%5Eseeded"
    done) &
    LISTER_PIDS+=($!)
  done
}
run() { SERVER_PIDS=$SERVER "$PEERS/load.sh" $BASE/oauth/token "$CREDS" grant_type=client_credentials "$DUR" "$CONC" | grep '^RESULT' | sed "s/^RESULT/RESULT name=$1/"; }

run warmup >/dev/null
for i in $(seq "$REPS"); do
  echo "round $i/$REPS" >&2
  run alone | tee -a results
  LISTER_PIDS=(); listers; sleep 1
  run with-lists | tee -a results
  kill "${LISTER_PIDS[@]}" 2>/dev/null || true; wait "${LISTER_PIDS[@]}" 2>/dev/null || true
  sleep 1
done
python3 - results <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.setdefault(kv["name"], []).append(kv)
med = lambda n, k: statistics.median(float(r[k]) for r in rows[n])
print()
print("| token load | tokens/s (median) | p50 ms | p99 ms | p99 runs | non-2xx |")
print("| --- | --- | --- | --- | --- | --- |")
for n in ("alone", "with-lists"):
    runs = " / ".join(f"{float(r['p99_ms']):.2f}" for r in rows[n])
    print(f"| {n} | {med(n,'rps'):,.0f} | {med(n,'p50_ms'):.2f} | {med(n,'p99_ms'):.2f} | {runs} | {sum(int(r['non2xx']) for r in rows[n])} |")
print()
print(f"p99 with heavy list queries / p99 alone: **{med('with-lists','p99_ms')/med('alone','p99_ms'):.2f}x** (target <= 2)")
PY
