#!/usr/bin/env bash
# This build against an earlier commit, side by side on one simulator: a backfill of
# 100k tasks over 30 days at page size 50, RUNS runs of each (default 5), alternating, so
# that both meet the same machine. Prints each run, then per build the median wall and
# CPU seconds and the wall time per day of data, and ends
#   wall_ratio=<this / earlier> cpu_ratio=<this / earlier>
# Usage: bench/against.sh COMMIT [RUNS]     (the first run builds COMMIT: ~6 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
commit=${1:?usage: bench/against.sh COMMIT [RUNS]}; runs=${2:-5}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin tasksync
# The earlier build lives in its own worktree and target directory under target/, kept
# between runs (a second comparison against the same commit builds nothing).
old_tree="target/against/$(git rev-parse --short "$commit")"
if [ ! -x "$old_tree/target/release/tasksync" ]; then
    rm -rf "$old_tree"; git worktree prune
    git worktree add --detach -f "$old_tree" "$commit" >/dev/null
    (cd "$old_tree" && CARGO_TARGET_DIR="$PWD/target" cargo build --release --quiet --bin tasksync)
fi
new=target/release/tasksync; old="$old_tree/target/release/tasksync"
work="$(mktemp -d)"; trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
end=$(( $(date +%s) / 3600 * 3600 )); from=$((end - 30 * 86400)); port=18097
# One simulator for every run, served by this build (the API is the same for both).
start_sim $new $port 100000 30 $end
run() { # run BIN LABEL: one backfill from empty, "wall cpu" appended to $work/LABEL
    rm -rf "$work/out" "$work/state"
    bench_config "$work/c.toml" $port "$work/out" "$work/state/state.db" \
        $'page_size = 50\nrequests_per_second = 100000' $'[sync]\nstart = "'$from$'"\nsettle = "0s"'
    /usr/bin/time -v "$1" --config "$work/c.toml" sync --from $from --to $end > /dev/null 2> "$work/time"
    local wall cpu
    wall=$(seconds "$work/time")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$work/time")
    echo "$2 run: wall_s=$wall cpu_s=$cpu"
    echo "$wall $cpu" >> "$work/$2"
}
for i in $(seq "$runs"); do run "$old" earlier; run "$new" this; done
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for label in earlier this; do
    w=$(cut -d' ' -f1 "$work/$label" | median); c=$(cut -d' ' -f2 "$work/$label" | median)
    echo "$label ($([ $label = this ] && git rev-parse --short HEAD || echo "$commit")): median wall_s=$w cpu_s=$c ms_per_day=$(python3 -c "print(round($w * 1000 / 30))")"
    eval "${label}_w=$w ${label}_c=$c"
done
python3 -c "print(f'wall_ratio={$this_w / $earlier_w:.2f} cpu_ratio={$this_c / $earlier_c:.2f}')"
