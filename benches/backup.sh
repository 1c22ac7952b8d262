#!/usr/bin/env bash
# Backup and restore of a sled store with 100,000 applications: `appauth backup` against a running
# server (3 times), the file's size, and `appauth restore` with the server stopped. The snapshot
# holds the store exclusively while it copies: the backup's wall time bounds how long admin writes
# wait (token requests never touch the store).
#
# env: APPS (100000), REPS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
APPS=${APPS:-100000}; REPS=${REPS:-3}
WORK=$(mktemp -d /tmp/appauth-backup.XXXXXX)
BASE=http://127.0.0.1:18082
APPAUTH_PID=
trap '[ -n "$APPAUTH_PID" ] && kill $APPAUTH_PID 2>/dev/null; rm -rf "$WORK"' EXIT
cargo build --release --quiet --bin appauth --example seed_store
BIN=$ROOT/target/release/appauth
cd "$WORK"
"$ROOT/target/release/examples/seed_store" data "$APPS"
"$BIN" serve --listen 127.0.0.1:18082 >>server.log 2>&1 &
APPAUTH_PID=$!
until curl -sf $BASE/readyz >/dev/null; do sleep 0.05; done
export APPAUTH_URL=$BASE APPAUTH_CREDENTIALS=$WORK/data/initial-admin.json
for i in $(seq "$REPS"); do
  t0=$(date +%s.%N)
  "$BIN" backup "b$i.backup" >/dev/null
  echo "backup $i: $(echo "$(date +%s.%N) - $t0" | bc) s, $(stat -c %s "b$i.backup") bytes"
done
echo "store held for the copy (server log): $(grep -o 'held_ms=[0-9]*' server.log | tr '\n' ' ')"
cp data/initial-admin.json admin.json
kill $APPAUTH_PID; wait $APPAUTH_PID 2>/dev/null || true; APPAUTH_PID=
t0=$(date +%s.%N)
"$BIN" restore b1.backup >/dev/null
echo "restore: $(echo "$(date +%s.%N) - $t0" | bc) s"
