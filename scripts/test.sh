#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the tests
# need when it is missing (redis-server for the revocation tests, chromium and
# chromium-driver for the console tests, postgresql for the shared-store,
# backup and failover tests, haproxy for the deploy config), starts a
# throw-away PostgreSQL cluster on an ephemeral port, then runs every test
# target.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
# The README's walk-through (tests/api/readme.rs) uses jq, as a reader would.
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# The shipped deploy/haproxy.cfg is run by a real HAProxy (tests/api/haproxy.rs).
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
# The Debian package test: dpkg-dev (cargo-deb's dependency lookup).
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
# Independent clients for RS256 and private_key_jwt: PyJWT and authlib
# (Debian's, under /usr/bin/python3), node openid-client (npm, below).
/usr/bin/python3 -c 'import jwt, authlib, cryptography, requests' >/dev/null 2>&1 \
  || need+=(python3 python3-jwt python3-authlib python3-cryptography python3-requests)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# cargo-deb builds the .deb in the package test (installed once, into ~/.cargo/bin).
command -v cargo-deb >/dev/null 2>&1 || cargo install --quiet --locked cargo-deb

# node openid-client (v5, CommonJS) for the private_key_jwt test, and oauth4webapi
# (ESM, DPoP with nonces) for the DPoP test, kept out of the repository.
if [ ! -d target/node-clients/node_modules/openid-client ] || [ ! -d target/node-clients/node_modules/oauth4webapi ]; then
  mkdir -p target/node-clients
  npm install --prefix target/node-clients --no-audit --no-fund --silent openid-client@5 oauth4webapi@3 >/dev/null
fi

# The newest authlib from PyPI too, not only Debian's (private_key_jwt test),
# in a virtualenv kept out of the repository.
if [ ! -x target/py-clients/bin/python ] || ! target/py-clients/bin/python -c 'import authlib, requests, cryptography' 2>/dev/null; then
  /usr/bin/python3 -m venv target/py-clients 2>/dev/null || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
    /usr/bin/python3 -m venv target/py-clients
  }
  target/py-clients/bin/pip install --quiet --upgrade authlib requests cryptography
fi
export TEST_PYPI_PYTHON="${TEST_PYPI_PYTHON:-$PWD/target/py-clients/bin/python}"

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
  # A port nobody listens on, below Linux's ephemeral range (32768-60999),
  # where an outgoing connection's local port could hold it.
  free_port() {
    local candidate
    for _ in $(seq 50); do
      candidate=$((20000 + RANDOM % 12000))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return 0; fi
    done
    return 1
  }
  "${as_pg[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust --no-sync >"$PGTMP/initdb.log" 2>&1 \
    || { cat "$PGTMP/initdb.log" >&2; exit 1; }
  # TLS on (plain connections still allowed): a throw-away CA, and a server
  # certificate for 127.0.0.1 it signed; the tests trust the CA through
  # TEST_POSTGRES_CA.
  (
    cd "$PGTMP"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=appauth-test-ca \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext \
      -out server.crt 2>/dev/null
    chmod 600 server.key ca.key
  )
  if [ ${#as_pg[@]} -gt 0 ]; then chown postgres "$PGTMP/server.key" "$PGTMP/server.crt"; fi
  # The port can still be taken between the check and the bind: try another.
  PGPORT=""
  for _ in 1 2 3 4 5; do
    candidate=$(free_port) || { echo "no free port for PostgreSQL" >&2; exit 1; }
    if "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -o \
      "-p $candidate -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on -c ssl=on -c ssl_cert_file=$PGTMP/server.crt -c ssl_key_file=$PGTMP/server.key" start >/dev/null; then
      PGPORT=$candidate
      break
    fi
  done
  [ -n "$PGPORT" ] || { cat "$PGTMP/server.log" >&2; exit 1; }
  trap '"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1; rm -rf "$PGTMP"' EXIT
  export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  export TEST_POSTGRES_CA="$PGTMP/ca.crt"
  echo "PostgreSQL for the tests: $TEST_POSTGRES_URL"
fi
cargo test --workspace --all-targets --all-features "$@"
cargo test --workspace --all-features --doc

# Every process a test starts is stopped when it ends, pass or fail: a
# browser, driver or server still running now is a leak, and a failure.
sleep 1
# (Debian's own redis-server service, on 6379, is not the tests'.)
leftover=$(pgrep -fa -- '--test-type=webdriver|chromedriver --port=|redis-server 127\.0\.0\.1:' | grep -v ':6379' || true)
if [ -n "$leftover" ]; then
  echo "processes started by the tests are still running:" >&2
  echo "$leftover" >&2
  exit 1
fi
