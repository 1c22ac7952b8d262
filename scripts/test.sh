#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the tests
# need when it is missing (redis-server for the revocation tests, chromium and
# chromium-driver for the console tests, postgresql for the shared-store
# tests), starts a throw-away PostgreSQL cluster on an ephemeral port, then
# runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Tests start their own redis-server on ephemeral ports; make sure they can find it.
# (Not an APPAUTH_* name: the server reads every APPAUTH_* variable as configuration.)
export TEST_REDIS_SERVER="${TEST_REDIS_SERVER:-$(command -v redis-server)}"

# A throw-away PostgreSQL cluster for this run (tests create one database
# each). PostgreSQL refuses to run as root, so as root it runs as `postgres`.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGTMP=$(mktemp -d /tmp/appauth-pg.XXXXXX)
  as_pg=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown postgres "$PGTMP"
    as_pg=(runuser -u postgres --)
  fi
  PGPORT=""
  for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then PGPORT=$candidate; break; fi
  done
  [ -n "$PGPORT" ] || { echo "no free port for PostgreSQL" >&2; exit 1; }
  "${as_pg[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust --no-sync >"$PGTMP/initdb.log" 2>&1 \
    || { cat "$PGTMP/initdb.log" >&2; exit 1; }
  "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -o \
    "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on" start >/dev/null \
    || { cat "$PGTMP/server.log" >&2; exit 1; }
  trap '"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1; rm -rf "$PGTMP"' EXIT
  export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  echo "PostgreSQL for the tests: $TEST_POSTGRES_URL"
fi
cargo test --all-targets "$@"
cargo test --doc
