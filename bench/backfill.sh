#!/usr/bin/env bash
# Backfill benchmark: tasksync against a bare page download of the same pages, on the same
# simulator, at 100k and 1M tasks (or the sizes given); then, at the largest size, the
# network a real API has (bench/latency.sh: 50 ms away, and behind a gateway's limit).
# Prints one line per figure and ends
#   ratio=<tasksync / bare download at the largest size> rss_mb=<peak there> rss_mb_100k=<peak at the first size>
#   latency_ratio=<50 ms, worst of c=4/8/16 vs ideal> throttled_ratio=<limited, vs served / limit>
# Usage: bench/backfill.sh [TASKS ...]      (default: 100000 1000000; about 9 minutes)
#        NO_LATENCY=1 bench/backfill.sh ... (the loopback part alone, about 1 minute)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
sizes=("${@:-100000 1000000}"); sizes=(${sizes[@]})
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin tasksync --example bare_download
bin=target/release/tasksync; bare=target/release/examples/bare_download
work="$(mktemp -d)"; trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
# The data ends at the current hour, so that incremental passes see a realistic "now";
# the seed fixes everything else. The simulator's clock is frozen there (--freeze): with a
# running clock new tasks keep appearing, and no pass would be quiet. It pre-renders every
# task before it listens, so it is not the bottleneck of either download.
end=$(( $(date +%s) / 3600 * 3600 ))
from=$((end - 30 * 86400)); port=18091
first_rss=""; ratio=""; rss=""
for n in "${sizes[@]}"; do
    start_sim $bin $port "$n" 30 $end
    rm -rf "$work/out" "$work/state"
    bench_config "$work/b.toml" $port "$work/out" "$work/state/state.db" "" \
        $'[sync]\nstart = "'$from$'"\nsettle = "0s"\nlookback = "1h"\nreopen_max_age = "3650d"'
    bare_line=$($bare "http://127.0.0.1:$port" $from $end 100 4)
    bare_s=${bare_line##*seconds=}
    echo "tasks=$n bare_download: $bare_line"
    /usr/bin/time -v $bin --config "$work/b.toml" sync --from $from --to $end > "$work/sync.out" 2> "$work/sync.err"
    # End to end, as /usr/bin/time saw the process (start-up and the last fsync included).
    sync_s=$(seconds "$work/sync.err")
    peak_kb=$(grep "Maximum resident" "$work/sync.err" | awk '{print $NF}')
    # verify reads the whole data set back: two columns and a hash per row.
    /usr/bin/time -v $bin --config "$work/b.toml" verify > "$work/verify.out" 2> "$work/verify.err"
    verify_s=$(seconds "$work/verify.err")
    echo "tasks=$n verify_s=$verify_s verify_rss_mb=$(( $(grep "Maximum resident" "$work/verify.err" | awk '{print $NF}') / 1024 )) verify: $(tail -1 "$work/verify.out" | cut -c1-40)"
    # Two incremental passes: the first re-reads the range (there is no cursor yet, so it
    # starts at sync.start); the second is the steady-state pass of a running daemon.
    $bin --config "$work/b.toml" sync > /dev/null 2>&1
    before=$(sim_stat $port requests)
    quiet=$($bin --config "$work/b.toml" sync 2>/dev/null)
    after=$(sim_stat $port requests)
    kill $sim; wait $sim 2>/dev/null || true
    r=$(python3 -c "print(f'{$sync_s / $bare_s:.2f}')")
    echo "tasks=$n bare_download_s=$bare_s tasksync_s=$sync_s ratio=$r tasks_per_s=$(python3 -c "print(int($n / $sync_s))") peak_rss_mb=$((peak_kb / 1024))"
    echo "tasks=$n quiet_pass_requests=$((after - before)) quiet_pass_files_written=$(echo "$quiet" | grep -o 'files_written=[0-9]*' | cut -d= -f2)"
    [ -z "$first_rss" ] && first_rss=$((peak_kb / 1024))
    ratio=$r; rss=$((peak_kb / 1024))
done
if [ -n "${NO_LATENCY:-}" ]; then
    echo "ratio=$ratio rss_mb=$rss rss_mb_100k=$first_rss"
    exit 0
fi
bash bench/latency.sh "${sizes[-1]}" | tee "$work/latency.out"
last=$(tail -1 "$work/latency.out")
echo "ratio=$ratio rss_mb=$rss rss_mb_100k=$first_rss ${last% throttled_share=*}"
