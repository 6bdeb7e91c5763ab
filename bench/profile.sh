#!/usr/bin/env bash
# Where a backfill's CPU goes, in instructions: one 30-day backfill of TASKS (default
# 100,000) under valgrind's callgrind, which counts instructions, not seconds, so the
# shares repeat whatever else the machine is doing. Prints each stage's inclusive share
# of all instructions of the tasksync process (the simulator runs outside it).
# Usage: bench/profile.sh [TASKS]     (KEEP=FILE keeps callgrind_annotate's whole listing)
# Takes about a minute at 100k: callgrind runs the process some 50 times slower.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-100000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
# Symbols name the functions. No line tables: with them callgrind splits a function over
# the files its inlined code came from, and no one line holds its inclusive cost. A target
# of its own keeps the stripped release build.
target=${PROFILE_TARGET:-/tmp/tasksync-profile-target}
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=false \
    cargo build --release --quiet --bin tasksync --target-dir "$target"
bin="$target/release/tasksync"
work="$(mktemp -d)"; trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
end=$(( $(date +%s) / 3600 * 3600 )); from=$((end - 30 * 86400)); port=18095
start_sim $bin $port "$n" 30 $end
bench_config "$work/b.toml" $port "$work/out" "$work/state/state.db"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    $bin --config "$work/b.toml" sync --from $from --to $end 2>/dev/null | tail -1
callgrind_annotate --inclusive=yes --threshold=100 "$work/cg.out" 2>/dev/null > "$work/annotated"
[ -n "${KEEP:-}" ] && cp "$work/annotated" "$KEEP"
total=$(grep "PROGRAM TOTALS" "$work/annotated" | awk '{gsub(",", "", $1); print $1}')
# share LABEL PATTERN: the inclusive share of the function matching PATTERN.
share() {
    local ir
    # Inlining splits a function over several lines (one per source file): the largest
    # is the function itself.
    ir=$(grep -E "^ *[0-9,]+ \([ 0-9.]+%\) +[^ ]*$2 \[" "$work/annotated" | awk '{gsub(",", "", $1); print $1}' \
        | sort -n | tail -1 || true)
    awk -v label="$1" -v ir="${ir:-0}" -v total="$total" 'BEGIN { printf "%-58s %5.1f %%\n", label, 100 * ir / total }'
}
echo "tasks=$n instructions=$total (inclusive shares of the tasksync process; indented: within the line above)"
share "decode_page: a page's body to rows" "tasksync::source::decode::decode_page"
share "  serde_json: parsing the body" "serde_json::de::from_trait"
share "  task_from: a task's fields to a row" "tasksync::source::decode::task_from"
share "    presigned::scrub_columns: signatures out of extra" "tasksync::presigned::scrub_columns"
share "    row::strip_query: queries off the *_url columns" "tasksync::row::strip_query"
share "paging::Collected::add: a leaf's records by identity" "tasksync::source::paging::Collected::add"
share "Rewrite::add: rows merged into a partition" "tasksync::commit::rewrite::Rewrite::add"
share "  schema::to_batch: rows to an Arrow batch" "tasksync::sink::format::schema::to_batch"
share "  FileWriter::write: Arrow batches to Parquet pages" "tasksync::sink::format::writer::FileWriter::write"
share "Ended::finish: the last pages and the footer" "tasksync::commit::rewrite::Ended::finish"
share "zstd, within the two above" "zstd_safe::CCtx::compress2"
share "drop TaskRow" "core::ptr::drop_in_place<tasksync::row::TaskRow>"
share "malloc (libc; free and realloc cost as much again)" "malloc"
share "memcpy (libc)" "__memcpy_avx_unaligned_erms"
share "State::complete_window: the checkpoint" "tasksync::state::State::complete_window"
