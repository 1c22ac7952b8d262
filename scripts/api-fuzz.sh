#!/usr/bin/env bash
# Fuzzes the admin API and the OAuth endpoints with schemathesis (every
# phase: examples, coverage, fuzzing, stateful; every check) against a
# throw-away appauth on loopback, driven by the served OpenAPI document.
# Fails on any finding. Then parses /metrics with the Prometheus Python
# client's strict OpenMetrics parser. Installs both into target/fuzz-venv.
#
#   scripts/api-fuzz.sh            # the debug binary the test command built (built if missing)
#   FUZZ_EXAMPLES=200 scripts/api-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/target/fuzz-venv"
ST_VERSION=4.32.5
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  echo "api-fuzz: installing schemathesis $ST_VERSION into $VENV" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 keeps venv in a package of its own.
    command -v apt-get >/dev/null && { apt-get install -y -qq python3-venv >/dev/null || sudo apt-get install -y -qq python3-venv >/dev/null; }
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
PROM_VERSION=0.26.0
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('prometheus-client') != '$PROM_VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install -q "prometheus-client==$PROM_VERSION"
fi
BIN="${APPAUTH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/appauth}"
[ -n "${APPAUTH_BIN:-}" ] || cargo build --all-features --bin appauth

DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$ROOT/target/api-fuzz"
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null
  wait 2>/dev/null || true
  cp "$DIR/server.log" "$ROOT/target/api-fuzz/server.log" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
# The fuzzer sends thousands of requests: the abuse limits would answer
# most of them 429 and leave the logic behind them untested. One trusted
# external issuer (never reached: .invalid) gives federated credentials and
# token exchange something to accept.
(cd "$DIR" && exec "$BIN" serve --listen "127.0.0.1:$PORT" \
  --set limits.admin_requests_per_minute=1000000 \
  --set limits.auth_failures_per_minute=1000000 \
  --set limits.address_failures_per_minute=1000000 \
  --set 'federation.issuers=[{issuer = "https://issuer.invalid"}]' >"$DIR/server.log" 2>&1) &
PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
ADMIN="$DIR/data/initial-admin.json"
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clientId"])' "$ADMIN")
SECRET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$ADMIN")
TOKEN=$(curl -sf -u "$ID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$PORT/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

OWN=$(curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/apps?filterBy=clientId==$ID" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["applications"][0]["id"])')

cd "$ROOT/scripts"
set +e
APPAUTH_FUZZ_OWN_APP_ID="$OWN" SCHEMATHESIS_HOOKS=api_fuzz_hooks PYTHONPATH="$ROOT/scripts" "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/api-fuzz.toml" run \
  "http://127.0.0.1:$PORT/api/openapi.json" \
  -H "Authorization: Bearer $TOKEN" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --max-examples "${FUZZ_EXAMPLES:-50}" --seed "${FUZZ_SEED:-20261202}" \
  --report junit --report-dir "$ROOT/target/api-fuzz"
RC=$?
set -e
if [ "$RC" -ne 0 ]; then
  echo "api-fuzz: schemathesis reported findings (exit $RC); the server log: target/api-fuzz/server.log" >&2
  exit "$RC"
fi
# After thousands of requests of every shape, /metrics must still parse
# with an independent strict OpenMetrics parser, and have counted them.
"$VENV/bin/python" "$ROOT/scripts/metrics_check.py" "http://127.0.0.1:$PORT/metrics"
