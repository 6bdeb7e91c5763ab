#!/usr/bin/env bash
# What metrics cost: the same 1M-task backfill with `[metrics]` off and on (scraped every
# second, as a busy Prometheus would), alternated, in one run. Prints one line per run and
#   metrics_off_s=<best of N> metrics_on_s=<best of N> off_rss_mb=<peak> on_rss_mb=<peak> scrapes=<n>
# The counters themselves are always updated (a few atomic adds per request and window);
# what "on" adds is the server, the scrapes and their reads of the state database.
# Usage: bench/metrics.sh [TASKS] [ROUNDS]      (default: 1000000 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-1000000}; rounds=${2:-2}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin tasksync
bin=target/release/tasksync
work="$(mktemp -d)"; trap 'kill $sim $scraper 2>/dev/null || true; rm -rf "$work"' EXIT
end=$(( $(date +%s) / 3600 * 3600 )); from=$((end - 30 * 86400)); port=18093; mport=18094
scraper=""
start_sim $bin $port "$n" 30 $end
best_off=""; best_on=""; rss_off=0; rss_on=0; scrapes=0
for round in $(seq "$rounds"); do
    for mode in off on; do
        rm -rf "$work/out" "$work/state"
        flag=""; [ $mode = on ] && flag="--metrics-listen 127.0.0.1:$mport"
        bench_config "$work/b.toml" $port "$work/out" "$work/state/state.db"
        if [ $mode = on ]; then
            ( while true; do curl -s -o /dev/null "127.0.0.1:$mport/metrics" && echo x; sleep 1; done ) > "$work/scrapes" &
            scraper=$!
        fi
        /usr/bin/time -v $bin --config "$work/b.toml" sync --from $from --to $end $flag > /dev/null 2> "$work/sync.err"
        [ -n "$scraper" ] && { kill $scraper 2>/dev/null || true; wait $scraper 2>/dev/null || true; scraper=""; }
        s=$(seconds "$work/sync.err"); kb=$(grep "Maximum resident" "$work/sync.err" | awk '{print $NF}')
        echo "round=$round metrics=$mode seconds=$s peak_rss_mb=$((kb / 1024))$([ $mode = on ] && echo " scrapes=$(wc -l < "$work/scrapes")")"
        if [ $mode = off ]; then
            best_off=$(python3 -c "print(min(x for x in [$s, ${best_off:-1e9}]))"); rss_off=$(( kb / 1024 > rss_off ? kb / 1024 : rss_off ))
        else
            best_on=$(python3 -c "print(min(x for x in [$s, ${best_on:-1e9}]))"); rss_on=$(( kb / 1024 > rss_on ? kb / 1024 : rss_on ))
            scrapes=$((scrapes + $(wc -l < "$work/scrapes")))
        fi
    done
done
echo "metrics_off_s=$best_off metrics_on_s=$best_on off_rss_mb=$rss_off on_rss_mb=$rss_on scrapes=$scrapes"
