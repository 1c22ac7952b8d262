#!/usr/bin/env bash
# Three appauth instances on one PostgreSQL and one Redis, behind HAProxy,
# all on loopback, started from the files in deploy/ (haproxy.cfg as is; each
# instance with the ExecStart line of deploy/appauth@.service and a config
# made from deploy/instance.toml). Measures (BENCHMARKS.md, "Cluster"):
#   1. tokens/s and p99 of one instance on PostgreSQL vs one on sled, alternated;
#      and of the three behind HAProxy, with each instance's CPU per token;
#   2. propagation of a regenerate from one instance to the two others;
#   3. a rolling restart of all three under load: failed token requests;
#   4. kill -9 of one instance under load: failed requests, acknowledged writes lost;
#   5. start-up of an instance with 100,000 applications in PostgreSQL, and RSS.
# On two cores three instances cannot show throughput scaling: the figure to
# extrapolate from is the CPU per token.
#
# env: DUR (10 s per load run), REPS (3), CHANGES (200), APPS (100000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DUR=${DUR:-10}; REPS=${REPS:-3}; CHANGES=${CHANGES:-200}; APPS=${APPS:-100000}

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v redis-server >/dev/null || need+=(redis-server)
command -v jq >/dev/null || need+=(jq)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --features loadgen --bin appauth --example seed_store
BIN=$ROOT/target/release/appauth

WORK=$(mktemp -d /tmp/appauth-cluster.XXXXXX)
chmod 755 "$WORK"
PIDS=()
PG_STOP=:
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  $PG_STOP
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( (RANDOM % 20000) + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}
wait_ready() { # url, seconds
  local end=$(( $(date +%s) + ${2:-30} ))
  until curl -sf -o /dev/null "$1/readyz"; do
    [ "$(date +%s)" -lt $end ] || { echo "$1 never became ready" >&2; exit 1; }
    sleep 0.02
  done
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# --- PostgreSQL (throw-away cluster, as the test command starts it) and Redis
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
mkdir -p "$WORK/pg" && chown "$( [ ${#as_pg[@]} -gt 0 ] && echo postgres || id -un)" "$WORK/pg"
PGPORT=$(free_port)
"${as_pg[@]}" "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres -A trust --no-sync >/dev/null
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -o \
  "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PG_STOP="${as_pg[*]} $PGBIN/pg_ctl -D $WORK/pg/data -m immediate stop"
"$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE appauth" >/dev/null
PGURL="postgres://postgres@127.0.0.1:$PGPORT/appauth"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
echo "PostgreSQL $PGBIN on $PGPORT, Redis on $RPORT, work dir $WORK"

# --- the instances
mkdir -p "$WORK/etc"
echo "$PGURL" > "$WORK/etc/postgres-url"
echo "redis://127.0.0.1:$RPORT" > "$WORK/etc/redis-url"
LBPORT=$(free_port); LBAPORT=$(free_port); STATSPORT=$(free_port)
declare -A PORT APORT PID
for n in 1 2 3; do
  PORT[$n]=$(free_port); APORT[$n]=$(free_port)
  mkdir -p "$WORK/var/$n"
  sed -e "s|127.0.0.1:8081|127.0.0.1:${PORT[$n]}|" \
      -e "s|127.0.0.1:9081|127.0.0.1:${APORT[$n]}|" \
      -e "s|https://auth.example.com|http://127.0.0.1:$LBPORT|" \
      -e "s|/var/lib/appauth/1|$WORK/var/$n|g" \
      -e "s|/etc/appauth|$WORK/etc|g" deploy/instance.toml > "$WORK/etc/$n.toml"
  # Bench only: the load generator and the propagation probe are one caller
  # each, far above the production rate limits.
  printf '\n[limits]\nadmin_requests_per_minute = 1000000\nauth_failures_per_minute = 1000000\naddress_failures_per_minute = 1000000\n[log]\nlevel = "warn"\n' >> "$WORK/etc/$n.toml"
done
EXEC=$(sed -n 's/^ExecStart=//p' deploy/appauth@.service)
start_instance() { # n
  local n=$1 cmd
  cmd=${EXEC//\/usr\/local\/bin\/appauth/$BIN}
  cmd=${cmd//\/etc\/appauth/$WORK/etc}
  cmd=${cmd//%i/$n}
  (cd "$WORK/var/$n" && exec $cmd >>"$WORK/var/$n/server.log" 2>&1) &
  PID[$n]=$!
  PIDS+=(${PID[$n]})
}
t0=$(date +%s.%N)
start_instance 1
wait_ready "http://127.0.0.1:${PORT[1]}"
echo "instance 1 initialised the database in $(echo "$(date +%s.%N) - $t0" | bc) s"
ADMIN=$WORK/var/1/data/initial-admin.json
start_instance 2; start_instance 3
wait_ready "http://127.0.0.1:${PORT[2]}"; wait_ready "http://127.0.0.1:${PORT[3]}"

export APPAUTH_LB_BIND=127.0.0.1:$LBPORT APPAUTH_LB_ADMIN_BIND=127.0.0.1:$LBAPORT APPAUTH_LB_STATS=127.0.0.1:$STATSPORT
export APPAUTH_1=127.0.0.1:${PORT[1]} APPAUTH_2=127.0.0.1:${PORT[2]} APPAUTH_3=127.0.0.1:${PORT[3]}
export APPAUTH_ADMIN_1=127.0.0.1:${APORT[1]} APPAUTH_ADMIN_2=127.0.0.1:${APORT[2]} APPAUTH_ADMIN_3=127.0.0.1:${APORT[3]}
haproxy -c -q -f deploy/haproxy.cfg
haproxy -db -f deploy/haproxy.cfg >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
LB=http://127.0.0.1:$LBPORT
LBA=http://127.0.0.1:$LBAPORT
wait_ready "$LB"; wait_ready "$LBA"
sleep 1.5 # every server through its first health checks

bench() { # url apps seconds [admin url: where the applications are created]
  "$BIN" bench --url "$1" --admin-url "${4:-$LBA}" --admin-credentials "$ADMIN" --apps "$2" --duration "$3" --warmup 2 \
    --reuse "$WORK/creds-$2.json" --json 2>>"$WORK/bench.log" || { echo "bench against $1 failed:" >&2; tail -3 "$WORK/bench.log" >&2; return 1; }
}

# --- 1. PostgreSQL vs sled, one instance each, alternated; then the cluster
mkdir -p "$WORK/sled"
SPORT=$(free_port)
(cd "$WORK/sled" && exec "$BIN" serve --listen "127.0.0.1:$SPORT" --set log.level=warn \
  --set limits.admin_requests_per_minute=1000000 >>server.log 2>&1) &
PIDS+=($!)
wait_ready "http://127.0.0.1:$SPORT"
for i in $(seq "$REPS"); do
  bench "http://127.0.0.1:${PORT[1]}" 1 "$DUR" "http://127.0.0.1:${APORT[1]}" | jq -c '{backend: "postgres", rps: .requests_per_s, p99: .latency_ms.p99, errors: .errors_by_status}' | tee -a "$WORK/backend.jsonl"
  "$BIN" bench --url "http://127.0.0.1:$SPORT" --admin-credentials "$WORK/sled/data/initial-admin.json" --apps 1 --duration "$DUR" --warmup 2 --json 2>/dev/null \
    | jq -c '{backend: "sled", rps: .requests_per_s, p99: .latency_ms.p99, errors: .errors_by_status}' | tee -a "$WORK/backend.jsonl"
done
kill "${PIDS[-1]}"
python3 - "$WORK/backend.jsonl" <<'PY'
import json, sys, statistics
runs = [json.loads(l) for l in open(sys.argv[1])]
m = lambda b, k: statistics.median(r[k] for r in runs if r["backend"] == b)
print(f"one instance, PostgreSQL vs sled: {m('postgres','rps'):,.0f} vs {m('sled','rps'):,.0f} tokens/s = {m('postgres','rps')/m('sled','rps'):.2f}; p99 {m('postgres','p99'):.2f} vs {m('sled','p99'):.2f} ms = {m('postgres','p99')/m('sled','p99'):.2f}")
PY
declare -A C0
for n in 1 2 3; do C0[$n]=$(cpu_ticks "${PID[$n]}"); done
bench "$LB" 100 "$DUR" > "$WORK/lb.json"
HZ=$(getconf CLK_TCK)
jq -c '{through_haproxy: true, rps: .requests_per_s, p99: .latency_ms.p99, requests, errors: .errors_by_status}' "$WORK/lb.json"
REQS=$(jq .requests "$WORK/lb.json")
for n in 1 2 3; do
  ticks=$(( $(cpu_ticks "${PID[$n]}") - ${C0[$n]} ))
  echo "instance $n: $(echo "scale=1; $ticks * 1000000 / $HZ / ($REQS / 3)" | bc) µs CPU per token (its third of the requests, warm-up included), RSS $(rss_mb "${PID[$n]}") MB"
done

# --- 2. propagation of a regenerate
python3 benches/cluster.py propagation "$ADMIN" "http://127.0.0.1:${APORT[1]}" \
  "http://127.0.0.1:${PORT[2]}" "http://127.0.0.1:${PORT[3]}" "$CHANGES" | sed 's/^/propagation: /'

# --- 3. rolling restart under load
bench "$LB" 100 $(( DUR * 3 )) > "$WORK/rolling.json" &
LOAD=$!
sleep 3
for n in 1 2 3; do
  kill -TERM "${PID[$n]}"; wait "${PID[$n]}" 2>/dev/null || true
  start_instance "$n"; wait_ready "http://127.0.0.1:${PORT[$n]}"
  sleep 2 # back in HAProxy's rotation (rise 2 × 500 ms) before the next
done
wait $LOAD
jq -c '{rolling_restart: true, requests, rps: .requests_per_s, p99: .latency_ms.p99, failed: .errors_by_status}' "$WORK/rolling.json"

# --- 4. kill -9 under load, with writes going on
bench "$LB" 100 $(( DUR * 2 )) > "$WORK/kill.json" &
LOAD=$!
python3 benches/cluster.py writer "$ADMIN" "$LBA" $(( DUR * 2 - 4 )) "$WORK/acked.json" > "$WORK/writer.json" &
WRITER=$!
sleep $(( DUR / 2 + 1 ))
kill -9 "${PID[2]}"; wait "${PID[2]}" 2>/dev/null || true
echo "killed instance 2 with SIGKILL under load"
sleep 3
start_instance 2; wait_ready "http://127.0.0.1:${PORT[2]}"
wait $LOAD; wait $WRITER
jq -c '{kill_9: true, requests, rps: .requests_per_s, failed: .errors_by_status}' "$WORK/kill.json"
echo "writes during the kill: $(cat "$WORK/writer.json")"
python3 benches/cluster.py verify "$ADMIN" "$WORK/acked.json" "http://127.0.0.1:${APORT[1]}" \
  "http://127.0.0.1:${APORT[2]}" "http://127.0.0.1:${APORT[3]}" | sed 's/^/after the kill: /'

# --- 5. start-up with 100,000 applications from PostgreSQL
kill -TERM "${PID[3]}"; wait "${PID[3]}" 2>/dev/null || true
t0=$(date +%s.%N)
"$ROOT/target/release/examples/seed_store" "$PGURL" "$APPS" >/dev/null
echo "seeded $APPS applications into PostgreSQL in $(echo "$(date +%s.%N) - $t0" | bc) s (instances 1 and 2 follow them through the change log)"
t0=$(date +%s.%N)
start_instance 3
wait_ready "http://127.0.0.1:${PORT[3]}" 60
echo "instance 3 started with $APPS+ applications from PostgreSQL in $(echo "$(date +%s.%N) - $t0" | bc) s"
sleep 3
bench "$LB" 100 "$DUR" | jq -c '{after_seed: true, rps: .requests_per_s, p99: .latency_ms.p99, errors: .errors_by_status}'
for n in 1 2 3; do echo "instance $n RSS with $APPS+ applications, after load: $(rss_mb "${PID[$n]}") MB"; done
for n in 1 2 3; do
  if grep -q '"level":"ERROR"\|ERROR' "$WORK/var/$n/server.log"; then
    echo "instance $n logged errors:"; grep 'ERROR' "$WORK/var/$n/server.log" | head -5
  fi
done
