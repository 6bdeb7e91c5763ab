#!/usr/bin/env bash
# Verifies the systemd units and fails if either one's exposure is above 2.0.
# Usage: systemd/check-units.sh PATH-TO-BUILT-tasksync
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "$1")"
if ! command -v systemd-analyze >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists: point it at the binary just built.
sed "s|/usr/local/bin/tasksync|$binary|" "$here/tasksync.service" > "$tmp/tasksync.service"
sed "s|/usr/local/bin/tasksync|$binary|" "$here/tasksync@.service" > "$tmp/tasksync@example.service"
for unit in "$tmp/tasksync.service" "$tmp/tasksync@example.service"; do
    out="$(systemd-analyze verify "$unit" 2>&1 || true)"
    if [ -n "$out" ]; then
        echo "systemd-analyze verify $(basename "$unit"):"; echo "$out"; exit 1
    fi
    # --threshold is on a 0-100 scale: 20 means an exposure of 2.0.
    if ! report="$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1)"; then
        echo "$(basename "$unit"): exposure above 2.0:"; echo "$report" | grep -E "✗|Overall"; exit 1
    fi
    echo "$(basename "$unit"): verified; $(echo "$report" | tail -1)"
done
