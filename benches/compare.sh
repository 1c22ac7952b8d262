#!/usr/bin/env bash
# appauth vs node oidc-provider (the reference of ../shared/peers) on this machine, in one sitting:
# both servers up, runs alternated (reference, appauth, reference, ...), medians and ratios printed.
#
# env: PEERS (default ../shared/peers), DUR (10 s), CONC (32), REPS (3), PEER_WORKERS (2),
#      APPAUTH_LOG_LEVEL (info: the shipped default, one access line per request)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS_SRC=$(cd "${PEERS:-../shared/peers}" && pwd)
DUR=${DUR:-10}; CONC=${CONC:-32}; REPS=${REPS:-3}; PEER_WORKERS=${PEER_WORKERS:-2}
WORK=$(mktemp -d /tmp/appauth-compare.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --quiet --features loadgen

# The shared folder is read-only; npm needs a writable copy for node_modules.
cp -r "$PEERS_SRC" "$WORK/peers" && chmod -R u+w "$WORK/peers"
(cd "$WORK/peers/oidc-provider" && npm ci --silent --no-audit --no-fund)

for port in 18080 3001; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port is in use; stop what runs there first" >&2; exit 2; fi
done

mkdir "$WORK/appauth"
(cd "$WORK/appauth" && exec env APPAUTH_LOG_LEVEL="${APPAUTH_LOG_LEVEL:-info}" "$ROOT/target/release/appauth" serve --listen 127.0.0.1:18080   > server.log 2>&1) &
APPAUTH_PID=$!
PIDS+=($APPAUTH_PID)
(cd "$WORK/peers/oidc-provider" && PORT=3001 WORKERS=$PEER_WORKERS exec node server.mjs >"$WORK/peer.log" 2>&1) &
PEER_PID=$!
PIDS+=($PEER_PID)
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:18080/readyz >/dev/null && curl -sf http://127.0.0.1:3001/jwks >/dev/null && break
  sleep 0.2
done

CREDS="$(jq -r '.clientId + ":" + .secret' "$WORK/appauth/data/initial-admin.json")"

run() { # name url creds pid
  SERVER_PIDS=$4 "$WORK/peers/load.sh" "$2" "$3" grant_type=client_credentials "$DUR" "$CONC" | grep '^RESULT' | sed "s/^RESULT/RESULT name=$1/"
}
echo "warm-up" >&2
run peer http://127.0.0.1:3001/token bench-client:bench-secret "$PEER_PID" >/dev/null
run appauth http://127.0.0.1:18080/oauth/token "$CREDS" "$APPAUTH_PID" >/dev/null
for i in $(seq "$REPS"); do
  echo "round $i/$REPS" >&2
  run peer http://127.0.0.1:3001/token bench-client:bench-secret "$PEER_PID" | tee -a "$WORK/results"
  sleep 2
  run appauth http://127.0.0.1:18080/oauth/token "$CREDS" "$APPAUTH_PID" | tee -a "$WORK/results"
  sleep 2
done

python3 - "$WORK/results" "$PEER_WORKERS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
    rows.setdefault(kv["name"], []).append(kv)
med = lambda name, k: statistics.median(float(r[k]) for r in rows[name])
print()
print("| server | tokens/s (median) | runs | p50 ms | p99 ms | non-2xx | server CPU (cores) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name, label in (("appauth", "appauth"), ("peer", f"oidc-provider, {sys.argv[2]} workers")):
    runs = " / ".join(f"{float(r['rps']):,.0f}" for r in rows[name])
    print(f"| {label} | **{med(name,'rps'):,.0f}** | {runs} | {med(name,'p50_ms'):.2f} | {med(name,'p99_ms'):.2f} | {sum(int(r['non2xx']) for r in rows[name])} | {med(name,'server_cpu'):.2f} |")
print()
print(f"ratio appauth / reference (tokens/s): **{med('appauth','rps')/med('peer','rps'):.1f}x**")
print(f"server CPU per token: appauth {med('appauth','server_cpu')/med('appauth','rps')*1e6:.0f} us, reference {med('peer','server_cpu')/med('peer','rps')*1e6:.0f} us")
PY
