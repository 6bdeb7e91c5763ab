#!/usr/bin/env bash
# Verifies the systemd units and fails if any one's exposure is above 2.0.
# Usage: systemd/check-units.sh PATH-TO-BUILT-tasksync
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "$1")"
if ! command -v systemd-analyze >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists: point it at the binary just built. It also runs
# `man` for each man: link, and the man page exists only once the package is installed
# (tests/debian_package.rs checks `man -w tasksync` there): that link is left out here.
edit() { sed -e "s|/usr/bin/tasksync|$binary|" -e "s|man:tasksync(1) ||" "$here/$1" > "$tmp/$2"; }
edit tasksync.service tasksync.service
edit tasksync@.service tasksync@example.service
edit tasksync-backfill@.service "tasksync-backfill@2025-01-01..2025-06-01.service"
for unit in "$tmp/tasksync.service" "$tmp/tasksync@example.service" "$tmp/tasksync-backfill@2025-01-01..2025-06-01.service"; do
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

# The user, the readers' group and the directories, made in a scratch root exactly as
# systemd-sysusers and systemd-tmpfiles would make them on a host.
root="$tmp/root"; mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$here/tasksync.sysusers" >/dev/null 2>&1
systemd-tmpfiles --create --root="$root" "$here/tasksync.tmpfiles" >/dev/null 2>&1
readers="$(awk -F: '$1 == "tasksync-readers" {print $3}' "$root/etc/group")"
user="$(awk -F: '$1 == "tasksync" {print $3}' "$root/etc/passwd")"
[ -n "$readers" ] && [ -n "$user" ] || { echo "sysusers: tasksync or tasksync-readers missing"; exit 1; }
expect() { # PATH MODE UID GID
    got="$(stat -c '%a %u %g' "$root$1")"
    [ "$got" = "$2 $3 $4" ] || { echo "tmpfiles: $1 is '$got', expected '$2 $3 $4'"; exit 1; }
}
expect /var/lib/tasksync 751 "$user" "$user"
expect /var/lib/tasksync/state 700 "$user" "$user"
expect /var/lib/tasksync/parquet 2750 "$user" "$readers"
echo "sysusers and tmpfiles: state private to tasksync, parquet/ readable by group tasksync-readers"
