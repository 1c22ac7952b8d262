#!/usr/bin/env bash
# The hot path must not notice the backend: token throughput and p99 of one instance on PostgreSQL
# (A) vs one on sled (B), same binary, same sitting, runs alternated. Starts a throw-away PostgreSQL
# cluster (as the postgres user when run as root) on an ephemeral port.
#
# env: DUR (10 s), CONC (32), REPS (3), PEERS (../shared/peers)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}; CONC=${CONC:-32}; REPS=${REPS:-3}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=$(mktemp -d /tmp/appauth-backend.XXXXXX)
PIDS=()
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then chown postgres "$WORK"; as_pg=(runuser -u postgres --); fi
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --features loadgen --bin appauth

PGPORT=$((20000 + RANDOM % 40000))
"${as_pg[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1" start >/dev/null

start() { # name port extra-env...
  local name=$1 port=$2; shift 2
  mkdir -p "$WORK/$name"
  (cd "$WORK/$name" && exec env "$@" APPAUTH_LOG_LEVEL=warn "$ROOT/target/release/appauth" serve --listen "127.0.0.1:$port" >server.log 2>&1) &
  PIDS+=($!); eval "PID_$name=$!"
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.05; done
  eval "CREDS_$name=\$(jq -r '.clientId + \":\" + .secret' \"$WORK/$name/data/initial-admin.json\")"
}
start postgres 18093 APPAUTH_STORE_BACKEND=postgres "APPAUTH_STORE_POSTGRES_URL=postgres://postgres@127.0.0.1:$PGPORT/postgres"
start sled 18094

run() { # name port
  local pid="PID_$1" creds="CREDS_$1"
  SERVER_PIDS=${!pid} "$PEERS/load.sh" "http://127.0.0.1:$2/oauth/token" "${!creds}" grant_type=client_credentials "$DUR" "$CONC" \
    | grep '^RESULT' | sed "s/^RESULT/RESULT name=$1/"
}
run postgres 18093 >/dev/null; run sled 18094 >/dev/null
for i in $(seq "$REPS"); do
  echo "round $i/$REPS" >&2
  run postgres 18093 | tee -a "$WORK/results"; sleep 1
  run sled 18094 | tee -a "$WORK/results"; sleep 1
done
python3 - "$WORK/results" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.setdefault(kv["name"], []).append(kv)
med = lambda n, k: statistics.median(float(r[k]) for r in rows[n])
for n in ("postgres", "sled"):
    runs = " / ".join(f"{float(r['rps']):,.0f}" for r in rows[n])
    print(f"| {n} | {med(n,'rps'):,.0f} ({runs}) | p99 {med(n,'p99_ms'):.2f} ms | non-2xx {sum(int(r['non2xx']) for r in rows[n])} |")
print(f"postgres / sled tokens/s = **{med('postgres','rps')/med('sled','rps'):.3f}**, p99 ratio {med('postgres','p99_ms')/med('sled','p99_ms'):.2f} (target: within 5 %)")
PY
