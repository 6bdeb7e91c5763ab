#!/usr/bin/env bash
# A backfill to S3-compatible object storage (moto's server on loopback) against the same
# backfill to a local directory, in one run: time and peak RSS of each. Ends with
#   local_s=<s> local_rss_mb=<MB> s3_s=<s> s3_rss_mb=<MB> largest_object_mb=<MB>
# Usage: bench/s3.sh [TASKS]      (default: 1000000; needs `pip install "moto[server]"`)
#        DAYS=1 bench/s3.sh        (all the tasks in one day: one partition of ~80 MB)
# Also prints the peak of anonymous memory (RssAnon, sampled every 20 ms): the PUT's body
# is the staged file memory-mapped, whose pages count in RSS but are clean page cache.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-1000000}; days=${DAYS:-30}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin tasksync
bin=target/release/tasksync
work="$(mktemp -d)"; trap 'kill $sim $moto 2>/dev/null || true; rm -rf "$work"' EXIT
end=$(( $(date +%s) / 86400 * 86400 )); from=$((end - days * 86400)); port=18095; s3port=18096
moto_server -H 127.0.0.1 -p $s3port >/dev/null 2>&1 &
moto=$!
start_sim $bin $port "$n" $days $end
while ! curl -s -o /dev/null "127.0.0.1:$s3port"; do sleep 0.5; done
curl -s -X PUT "127.0.0.1:$s3port/bench" >/dev/null
echo secret > "$work/s3_secret"
for target in local s3; do
    if [ $target = s3 ]; then
        out="s3://bench/tasks-export"
        table=$'[storage.s3]\nendpoint = "http://127.0.0.1:'$s3port$'"\naccess_key_id = "k"\nsecret_access_key_file = "'$work$'/s3_secret"\nallow_http = true'
    else
        out="$work/out"; table=""
    fi
    bench_config "$work/$target.toml" $port "$out" "$work/state-$target/state.db" "" "$table"
    /usr/bin/time -v $bin --config "$work/$target.toml" sync --from $from --to $end > "$work/$target.out" 2> "$work/$target.err" &
    timed=$!; anon=0
    while kill -0 $timed 2>/dev/null; do
        pid=$(pgrep -n -f "$work/$target.toml" || true)
        a=$(awk '/RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0); [ "${a:-0}" -gt $anon ] && anon=$a
        sleep 0.02
    done
    wait $timed
    s=$(seconds "$work/$target.err"); kb=$(grep "Maximum resident" "$work/$target.err" | awk '{print $NF}')
    echo "target=$target tasks=$n days=$days seconds=$s peak_rss_mb=$((kb / 1024)) peak_anon_mb=$((anon / 1024)) $(cut -c1-120 "$work/$target.out")"
    eval "${target}_s=$s ${target}_rss=$((kb / 1024))"
done
largest=$(ls -l "$work"/out/tasks/*/part-0.parquet | awk '{print $5}' | sort -n | tail -1)
$bin --config "$work/s3.toml" verify | tail -1 | cut -c1-60
echo "local_s=$local_s local_rss_mb=$local_rss s3_s=$s3_s s3_rss_mb=$s3_rss largest_object_mb=$(python3 -c "print(round($largest / 1048576, 1))")"
