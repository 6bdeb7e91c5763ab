#!/usr/bin/env bash
# Fuzzes the page decoder for a bounded time (default 300 s), outside CI.
# Usage: fuzz/run.sh [SECONDS]
# cargo-fuzz wants nightly; only the stable toolchain is installable here, so
# RUSTC_BOOTSTRAP=1 lets stable accept the -Z flags it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/decode_page
cp -n fuzz/seeds/decode_page/* tests/corpus/*.body fuzz/corpus/decode_page/ 2>/dev/null || true
RUSTC_BOOTSTRAP=1 cargo fuzz run decode_page fuzz/corpus/decode_page -- -max_total_time="${1:-300}" -max_len=65536
# Anything found lands in fuzz/artifacts/decode_page/: add it to tests/corpus/ with an
# expectation in tests/it/bad_input.rs.
