#!/usr/bin/env bash
# appauth with 100,000 applications: start-up time, resident memory under load, token throughput
# rotating over 10,000 applications vs one, a 20,000-row CSV export, and list-query latency.
# 90,000 placeholder applications are written into the store offline (examples/seed_store.rs);
# 10,000 real ones are provisioned through the admin API by `appauth bench`.
#
# env: DUR (10 s), CONC (32), REPS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}; CONC=${CONC:-32}; REPS=${REPS:-3}
WORK=$(mktemp -d /tmp/appauth-scale.XXXXXX)
BASE=http://127.0.0.1:18081
APPAUTH_PID=
trap '[ -n "$APPAUTH_PID" ] && kill $APPAUTH_PID 2>/dev/null || true' EXIT

cargo build --release --quiet --features loadgen --bin appauth --example seed_store
BIN=$ROOT/target/release/appauth
cd "$WORK"
"$ROOT/target/release/examples/seed_store" data 90000

start() {
  local t0; t0=$(date +%s.%N)
  "$BIN" serve --listen 127.0.0.1:18081 --set limits.admin_requests_per_minute=1000000 >>server.log 2>&1 &
  APPAUTH_PID=$!
  until curl -sf $BASE/readyz >/dev/null; do sleep 0.01; done
  STARTUP_S=$(echo "$(date +%s.%N) - $t0" | bc)
}
start
echo "first start (initialises, 90,000 seeded apps): $STARTUP_S s"
ADMIN=$WORK/data/initial-admin.json

t0=$(date +%s.%N)
"$BIN" bench --url $BASE --admin-credentials "$ADMIN" --apps 10000 --duration 1 --warmup 0 --reuse creds.json >/dev/null
echo "provisioned 10,000 applications through the API in $(echo "$(date +%s.%N) - $t0" | bc) s"
token() { curl -s -u "$(jq -r '.clientId + ":" + .secret' "$ADMIN")" -d grant_type=client_credentials $BASE/oauth/token | jq -r .access_token; }
echo "applications stored: $(curl -s -H "Authorization: Bearer $(token)" "$BASE/api/v1/apps?limit=1" | jq .totalRecords)"

kill $APPAUTH_PID; wait $APPAUTH_PID 2>/dev/null || true
start
echo "restart with 100,001 applications: $STARTUP_S s to ready"
sleep 2
echo "resident memory at rest after the restart: $(grep VmRSS /proc/$APPAUTH_PID/status | awk '{print $2/1024 " MB"}')"

for i in $(seq "$REPS"); do
  for n in 1 10000; do
    "$BIN" bench --url $BASE --admin-credentials "$ADMIN" --apps $n --concurrency "$CONC" --duration "$DUR" --warmup 2 --reuse creds.json --json 2>/dev/null \
      | jq -c --arg n "$n" '{apps: ($n|tonumber), rps: .requests_per_s, p50: .latency_ms.p50, p99: .latency_ms.p99, errors: .errors_by_status}' | tee -a runs.jsonl
    sleep 1
  done
done
echo "resident memory: $(grep VmRSS /proc/$APPAUTH_PID/status | awk '{print $2/1024 " MB"}') now, peak $(grep VmHWM /proc/$APPAUTH_PID/status | awk '{print $2/1024 " MB"}')"

TOKEN=$(token)
for i in 1 2 3; do
  curl -s -o export.csv -D headers.txt -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" -H "Accept: text/csv" "$BASE/api/v1/apps?sortBy=name" >> export_times
done
echo "CSV export: $(grep -i x-exported-records headers.txt | tr -d '\r') of $(grep -i x-total-records headers.txt | tr -d '\r' | awk '{print $2}') in $(sort -n export_times | sed -n 2p) s (median of 3), $(wc -c < export.csv) bytes"
for i in $(seq 200); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/apps?filterBy=name%3D%40seeded-0&sortBy=name&sortOrder=desc&offset=100&limit=50" >> list_times
done
echo "list query over 100,001 apps (filter + sort + page), 200 requests: p50 $(sort -n list_times | sed -n 100p) s, p99 $(sort -n list_times | sed -n 198p) s"

python3 - runs.jsonl <<'PY'
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
by = lambda n, k: statistics.median(r[k] for r in runs if r["apps"] == n)
one, many = by(1, "rps"), by(10000, "rps")
print(f"tokens/s rotating over 1 app: {one:,.0f} (p99 {by(1,'p99'):.2f} ms); over 10,000 apps: {many:,.0f} (p99 {by(10000,'p99'):.2f} ms); ratio {many/one:.2f}")
print("errors:", [r["errors"] for r in runs if r["errors"]] or "none")
PY
