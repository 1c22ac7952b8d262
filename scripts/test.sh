#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what the tests
# need when it is missing (redis-server for the revocation tests, chromium and
# chromium-driver for the console tests), then runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
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
cargo test --all-targets "$@"
cargo test --doc
