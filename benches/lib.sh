# Shared by the benchmark scripts that run appauth against ../shared/peers/limit-server (sourced,
# after `cd` to the repository root): the work directory, process cleanup, the load tools, and
# release builds of appauth and of the ceiling (from the read-only shared folder into our target).
# Sets ROOT, PEERS, WORK (mktemp -d /tmp/appauth-$1.XXXXXX), PIDS, LIMIT_BIN; defines steal.
ROOT=$PWD
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
WORK=$(mktemp -d "/tmp/appauth-$1.XXXXXX")
PIDS=()
# The machine's steal time so far (USER_HZ ticks): the hypervisor running something else on our vCPUs.
steal() { awk '/^cpu /{print $9}' /proc/stat; }
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq; }
cargo build --release --quiet --bin appauth
LIMIT_BIN="$ROOT/target/limit-server/release/limit-server"
cargo build --release --quiet --locked --manifest-path "$PEERS/limit-server/Cargo.toml" --target-dir "$ROOT/target/limit-server"
