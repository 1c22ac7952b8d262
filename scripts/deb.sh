#!/usr/bin/env bash
# Builds the Debian package (cargo-deb): /usr/bin/appauth, /etc/appauth/appauth.toml,
# appauth.service (the template unit deploy/appauth@.service for one instance), man pages for
# every command (clap_mangen, from the binary itself), shell completions and the README. Prints the .deb's path.
#
# env: BIN (the binary to package; default: a release build), OUT (default target/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
need=()
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo-deb >/dev/null 2>&1 || cargo install --quiet --locked cargo-deb
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin appauth
  BIN="$ROOT/target/release/appauth"
fi
STAGE="$ROOT/target/deb"
rm -rf "$STAGE" && mkdir -p "$STAGE/completions" "$STAGE/man"
install -m 0755 "$BIN" "$STAGE/appauth"
# One instance, /etc/appauth/appauth.toml, state in /var/lib/appauth: the template's hardening as is.
sed -e 's|(instance %i)|(Debian package)|' \
    -e 's|/usr/local/bin/appauth|/usr/bin/appauth|' \
    -e 's|/etc/appauth/%i.toml|/etc/appauth/appauth.toml|' \
    -e 's|appauth/%i|appauth|g' \
    -e 's|/var/lib/appauth/%i|/var/lib/appauth|g' \
    -e 's|^# One appauth instance.*|# appauth from the Debian package: systemctl enable --now appauth|' \
    -e '/^# \/etc\/appauth\/1.toml/d;/^# instances"). benches/d;/^# ExecStart line/d' \
    deploy/appauth@.service > "$STAGE/appauth.service"
if grep -q '%i' "$STAGE/appauth.service"; then echo "appauth.service still names an instance" >&2; exit 1; fi
# One page per command (appauth.1, appauth-apps.1, appauth-apps-create.1, …), from the binary's own
# command tree, so a page cannot disagree with --help.
"$STAGE/appauth" man "$STAGE/man"
gzip -9n "$STAGE"/man/*.1
"$STAGE/appauth" completion bash > "$STAGE/completions/appauth"
"$STAGE/appauth" completion zsh > "$STAGE/completions/_appauth"
"$STAGE/appauth" completion fish > "$STAGE/completions/appauth.fish"
OUT=${OUT:-$ROOT/target/debian}
mkdir -p "$OUT"
cargo deb --no-build --no-strip --output "$OUT" 2>&1 | tail -1
