#!/usr/bin/env bash
# The token endpoint against the physical ceiling, in one sitting: ../shared/peers/limit-server
# (SIGN=1: a hyper server that only ES256-signs a JWT per POST) and appauth on shipped defaults
# (access log on), runs alternated ceiling, appauth, ceiling, ...; prints per-round figures, the
# ratio of median throughputs (target >= 0.95), p99 ratios and server CPU per token.
#
# env: DUR (10 s), CONC (32), REPS (3), PEERS (../shared/peers), BASE_BIN (optional: another appauth
# binary, e.g. an older commit's release build, run as "base" in the same rounds for an A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}; CONC=${CONC:-32}; REPS=${REPS:-3}
source benches/lib.sh ceiling

for port in 18095 18096 18097; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port is in use; stop what runs there first" >&2; exit 2; fi
done
(SIGN=1 PORT=18096 THREADS=2 exec "$LIMIT_BIN" >"$WORK/limit.log" 2>&1) &
PID_limit=$!; PIDS+=($PID_limit)
mkdir "$WORK/appauth"
(cd "$WORK/appauth" && exec "$ROOT/target/release/appauth" serve --listen 127.0.0.1:18095 >server.log 2>&1) &
PID_appauth=$!; PIDS+=($PID_appauth)
if [[ -n "${BASE_BIN:-}" ]]; then
  mkdir "$WORK/base"
  (cd "$WORK/base" && exec "$BASE_BIN" serve --listen 127.0.0.1:18097 >server.log 2>&1) &
  PID_base=$!; PIDS+=($PID_base)
  until curl -sf http://127.0.0.1:18097/readyz >/dev/null; do sleep 0.05; done
  BASE_CREDS="$(jq -r '.clientId + ":" + .secret' "$WORK/base/data/initial-admin.json")"
fi
until curl -sf http://127.0.0.1:18095/readyz >/dev/null; do sleep 0.05; done
for _ in $(seq 100); do curl -s -o /dev/null -X POST http://127.0.0.1:18096/token && break; sleep 0.05; done
CREDS="$(jq -r '.clientId + ":" + .secret' "$WORK/appauth/data/initial-admin.json")"

run() { # name url creds
  local pid="PID_$1"
  SERVER_PIDS=${!pid} "$PEERS/load.sh" "$2" "$3" grant_type=client_credentials "$DUR" "$CONC" \
    | grep '^RESULT' | sed "s/^RESULT/RESULT name=$1/"
}
# Warm-up, not recorded.
run limit http://127.0.0.1:18096/token a:b >/dev/null
run appauth http://127.0.0.1:18095/oauth/token "$CREDS" >/dev/null
[[ -z "${BASE_BIN:-}" ]] || run base http://127.0.0.1:18097/oauth/token "$BASE_CREDS" >/dev/null
for i in $(seq "$REPS"); do
  echo "round $i/$REPS" >&2
  run limit http://127.0.0.1:18096/token a:b | tee -a "$WORK/results"; sleep 1
  run appauth http://127.0.0.1:18095/oauth/token "$CREDS" | tee -a "$WORK/results"; sleep 1
  [[ -z "${BASE_BIN:-}" ]] || { run base http://127.0.0.1:18097/oauth/token "$BASE_CREDS" | tee -a "$WORK/results"; sleep 1; }
done
python3 - "$WORK/results" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.setdefault(kv["name"], []).append(kv)
def col(n, k): return [float(r[k]) for r in rows[n] if k in r]
a, l = statistics.median(col("appauth", "rps")), statistics.median(col("limit", "rps"))
print("| server | tokens/s per round | p99 ms per round | server CPU µs/token (median) | non-2xx |")
print("| --- | --- | --- | --- | --- |")
for n in [n for n in ("limit", "appauth", "base") if n in rows]:
    rps, p99 = col(n, "rps"), col(n, "p99_ms")
    cpu = [float(r["server_cpu"]) / float(r["rps"]) * 1e6 for r in rows[n] if "server_cpu" in r]
    non2xx = sum(int(float(r.get("non2xx", 0))) for r in rows[n])
    cpu_s = f"{statistics.median(cpu):.1f}" if cpu else "-"
    print(f"| {n} | {' / '.join(f'{x:,.0f}' for x in rps)} | {' / '.join(f'{x:.2f}' for x in p99)} | {cpu_s} | {non2xx} |")
p99 = [x / y for x, y in zip(col("appauth", "p99_ms"), col("limit", "p99_ms"))]
print(f"throughput appauth / ceiling (medians) = **{a / l:.3f}** (target >= 0.95); p99 ratios per round: {', '.join(f'{x:.2f}' for x in p99)}")
if "base" in rows:
    b = statistics.median(col("base", "rps"))
    print(f"throughput base / ceiling (medians) = {b / l:.3f}; appauth / base = **{a / b:.3f}**")
PY
