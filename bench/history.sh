#!/usr/bin/env bash
# task_history benchmark (issue 22): what keeping every version costs.
# 1. A backfill of TASKS tasks over 30 days with storage.history on and off: wall time,
#    peak RSS, bytes of tasks/ and of task_history/.
# 2. Then a simulated day of incremental passes every 5 minutes (the default schedule),
#    the simulator's clock moved by POST /_sim/now, new tasks arriving and running through
#    their stages: versions opened, bytes of both data sets after the day, the largest peak
#    RSS of one pass, and the passes' total time.
# Usage: bench/history.sh [TASKS] [PASSES]      (default: 1000000 288; about 6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-1000000}; passes=${2:-288}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin tasksync
bin=target/release/tasksync
work="$(mktemp -d)"; trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
# The backfill ends a day before the current hour, and the data runs to it: a pass plans no
# further than the earlier of its own clock and the API's, so the simulated day of passes
# must lie in the wall clock's past. Its tasks appear as the simulator's clock moves.
end=$(( $(date +%s) / 3600 * 3600 - 86400 ))
from=$((end - 30 * 86400)); port=18095
start_sim $bin $port "$n" 31 $((end + 86400))
curl -s -X POST "127.0.0.1:$port/_sim/now?to=$end" >/dev/null
bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
sync_keys=$'[sync]\nstart = "'$from$'"\nsettle = "2m"\nlookback = "1h"'
for history in false true; do
    rm -rf "$work/out" "$work/state"
    bench_config "$work/b.toml" $port "$work/out" "$work/state/state.db" "" "history = $history"$'\n'"$sync_keys"
    /usr/bin/time -v $bin --config "$work/b.toml" sync --from $from --to $end > "$work/sync.out" 2> "$work/sync.err"
    echo "backfill tasks=$n history=$history seconds=$(seconds "$work/sync.err") peak_rss_mb=$(( $(grep "Maximum resident" "$work/sync.err" | awk '{print $NF}') / 1024 )) tasks_bytes=$(bytes "$work/out/tasks") history_bytes=$(bytes "$work/out/task_history")"
done
# The day of passes, history on, from the backfill just made.
$bin --config "$work/b.toml" sync > /dev/null 2>&1
total=0; versions=0; worst=0; t=$end
for i in $(seq 1 "$passes"); do
    t=$((t + 300))
    curl -s -X POST "127.0.0.1:$port/_sim/now?to=$t" >/dev/null
    /usr/bin/time -v $bin --config "$work/b.toml" sync > "$work/pass.out" 2> "$work/pass.err"
    s=$(seconds "$work/pass.err"); total=$(python3 -c "print(f'{$total + $s:.2f}')")
    kb=$(grep "Maximum resident" "$work/pass.err" | awk '{print $NF}'); [ "$kb" -gt "$worst" ] && worst=$kb
    v=$(grep -o 'history_versions=[0-9]*' "$work/pass.out" | cut -d= -f2); versions=$((versions + ${v:-0}))
done
echo "day passes=$passes versions_opened=$versions passes_seconds=$total worst_pass_rss_mb=$((worst / 1024)) tasks_bytes=$(bytes "$work/out/tasks") history_bytes=$(bytes "$work/out/task_history")"
$bin --config "$work/b.toml" verify | grep -E "^(history|ok|problem)" | head -5
