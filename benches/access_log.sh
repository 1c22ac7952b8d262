#!/usr/bin/env bash
# What the access log costs on the token endpoint, in one sitting: two servers on the same binary,
# A with log.level=warn (no access lines) and B with the shipped info (one line per request, written
# to a file as in production), runs alternated A, B, A, B, ...; prints medians and B/A (target >= 0.90).
#
# env: DUR (10 s), CONC (32), REPS (3), PEERS (../shared/peers)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}; CONC=${CONC:-32}; REPS=${REPS:-3}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=$(mktemp -d /tmp/appauth-accesslog.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --features loadgen --bin appauth

start() { # name port level
  mkdir "$WORK/$1"
  (cd "$WORK/$1" && exec env APPAUTH_LOG_LEVEL="$3" "$ROOT/target/release/appauth" serve --listen "127.0.0.1:$2" >server.log 2>&1) &
  PIDS+=($!)
  eval "PID_$1=$!"
  until curl -sf "http://127.0.0.1:$2/readyz" >/dev/null; do sleep 0.05; done
  eval "CREDS_$1=\$(jq -r '.clientId + \":\" + .secret' \"$WORK/$1/data/initial-admin.json\")"
}
start warn 18091 warn
start info 18092 info

run() { # name port
  local pid="PID_$1" creds="CREDS_$1"
  SERVER_PIDS=${!pid} "$PEERS/load.sh" "http://127.0.0.1:$2/oauth/token" "${!creds}" grant_type=client_credentials "$DUR" "$CONC" \
    | grep '^RESULT' | sed "s/^RESULT/RESULT name=$1/"
}
run warn 18091 >/dev/null
run info 18092 >/dev/null
for i in $(seq "$REPS"); do
  echo "round $i/$REPS" >&2
  run warn 18091 | tee -a "$WORK/results"; sleep 1
  run info 18092 | tee -a "$WORK/results"; sleep 1
done
echo "access lines written by B: $(grep -c 'appauth::access' "$WORK/info/server.log")" >&2
python3 - "$WORK/results" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.setdefault(kv["name"], []).append(float(kv["rps"]))
a, b = statistics.median(rows["warn"]), statistics.median(rows["info"])
fmt = lambda n: " / ".join(f"{x:,.0f}" for x in rows[n])
print(f"| A: log.level=warn | {a:,.0f} ({fmt('warn')}) |")
print(f"| B: log.level=info | {b:,.0f} ({fmt('info')}) |")
print(f"B / A = **{b/a:.3f}** (target >= 0.90)")
PY
