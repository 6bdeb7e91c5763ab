#!/usr/bin/env bash
# Builds the Debian package from a clean clone, then checks it with lintian:
#   target/debian/tasksync_<version>-1_<arch>.deb
# Installs cargo-deb (pinned) and lintian when missing. The man page and the shell
# completions are generated here from the clap definitions (examples/package_docs.rs).
# Usage: bash packaging/deb.sh          (NO_LINTIAN=1 skips the check)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cargo build --locked --release --bin tasksync
cargo run --locked --release --quiet --example package_docs -- target/packaging >/dev/null
gzip -9 -n -f -k target/packaging/tasksync.1
rm -f target/debian/tasksync_*.deb
cargo deb --no-build --locked --quiet
deb="$(ls target/debian/tasksync_*.deb)"
echo "Built $deb"
if [ -z "${NO_LINTIAN:-}" ]; then
    if ! command -v lintian >/dev/null; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get install -y -qq --no-install-recommends lintian >/dev/null \
            || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends lintian >/dev/null; }
    fi
    # Errors fail the build; the warnings that stay are listed, with why, in docs/operating.md ("The Debian package").
    lintian --fail-on error "$deb" || {
        echo "lintian found errors in $deb"; exit 1; }
fi
