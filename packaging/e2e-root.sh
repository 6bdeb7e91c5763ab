#!/usr/bin/env bash
# A minimal Debian 12 root that boots under systemd-nspawn, for tests/debian_package.rs,
# cached at DIR (default target/e2e/root; about 50 s to make, 300 MB). It has systemd and
# the tools the test uses (man-db, curl, procps), and no CA certificates: the package's
# own Depends must bring them. Installs debootstrap and systemd-container when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/e2e/root}
if [ -x "$dir/usr/lib/systemd/systemd" ] && [ -e "$dir/.complete" ]; then
    exit 0
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
rm -rf "$dir.partial"; mkdir -p "$(dirname "$dir")"
$sudo debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,man-db,curl,procps \
    bookworm "$dir.partial" http://deb.debian.org/debian >/dev/null
touch "$dir.partial/.complete"
rm -rf "$dir"; mv "$dir.partial" "$dir"
echo "Made a Debian 12 root at $dir"
