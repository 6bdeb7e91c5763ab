#!/usr/bin/env bash
# JSON parsers on list_task pages (issue 15): serde_json, sonic-rs and simd-json parse the
# same simulator-rendered pages into the decoder's borrowed `Field`s; then tasksync's whole
# decoder for scale. bench/parsers/ is a crate of its own, so that neither candidate is
# built by the project or CI. Usage: bench/parsers.sh [PAGES]   (default 2000, ~80 KB each)
# NATIVE=1 builds for this CPU (AVX2): what a portable binary cannot assume.
set -euo pipefail
cd "$(dirname "$0")/parsers"
target=/tmp/tasksync-parsers-target
if [ -n "${NATIVE:-}" ]; then export RUSTFLAGS="-C target-cpu=native"; target=$target-native; fi
CARGO_TARGET_DIR=$target cargo build --release --quiet
$target/release/tasksync-parsers-bench "${1:-2000}"
