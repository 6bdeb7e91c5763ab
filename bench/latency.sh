#!/usr/bin/env bash
# The network a real API has: tasksync against a simulator that answers each request 50 ms
# after it arrives (--latency 50, jittered), at concurrency 4, 8 and 16, against the ideal
# requests x RTT / concurrency; then behind a gateway limit below our own rate
# (--rate-limit, 429 with Retry-After) against the pages served / limit. Each run also
# prints the requests made against the minimum: pages at the page size plus one probe per
# window. Ends with
#   latency_ratio=<worst of c=4/8/16 vs ideal> throttled_ratio=<vs served / limit> throttled_share=<429s / requests>
# Usage: bench/latency.sh [TASKS] [LATENCY_MS] [LIMIT_RPS]      (default: 1000000 50 100)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-1000000}; ms=${2:-50}; limit=${3:-100}; page=100
cargo build --release --quiet --bin tasksync
bin=target/release/tasksync
work="$(mktemp -d)"; trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
end=$(( $(date +%s) / 3600 * 3600 )); from=$((end - 30 * 86400)); port=18097
field() { echo "$1" | grep -o "$2=[0-9]*" | cut -d= -f2; }
run() { # concurrency rps -> "seconds requests windows peak_rss_mb"
    rm -rf "$work/out" "$work/state"
    bench_config "$work/b.toml" $port "$work/out" "$work/state/state.db" \
        "page_size = $page"$'\n'"concurrency = $1"$'\n'"requests_per_second = $2"$'\nretry_max_delay = "30s"\nmax_retries = 30'
    local t0=$(date +%s.%N)
    local out=$(/usr/bin/time -f "%M" -o "$work/rss" $bin --config "$work/b.toml" sync --from $from --to $end 2>/dev/null)
    local t1=$(date +%s.%N)
    echo "$(python3 -c "print(f'{$t1 - $t0:.2f}')") $(field "$out" requests) $(field "$out" windows) $(( $(tail -1 "$work/rss") / 1024 ))"
}
overhead() { # requests windows -> "minimum=.. overhead=..%"
    python3 -c "m = -(-$n // $page) + $2; print(f'minimum={m} overhead={100 * ($1 - m) / m:.1f}%')"
}
start_sim $bin $port "$n" 30 $end --latency "$ms"
worst=0
for c in 4 8 16; do
    read -r s req windows rss <<< "$(run $c 100000)"
    ideal=$(python3 -c "print(f'{$req * $ms / 1000 / $c:.2f}')")
    ratio=$(python3 -c "print(f'{$s / $ideal:.2f}')")
    echo "latency_ms=$ms concurrency=$c tasks=$n requests=$req $(overhead $req $windows) seconds=$s ideal_s=$ideal ratio=$ratio peak_rss_mb=$rss"
    worst=$(python3 -c "print(max($worst, $ratio))")
done
kill $sim; wait $sim 2>/dev/null || true
start_sim $bin $port "$n" 30 $end --rate-limit "$limit"
read -r s req windows rss <<< "$(run 8 $((limit * 4)))"
throttled=$(sim_stat $port throttled)
served=$((req - throttled))
ideal=$(python3 -c "print(f'{$served / $limit:.2f}')")
tr=$(python3 -c "print(f'{$s / $ideal:.2f}')")
share=$(python3 -c "print(f'{$throttled / $req:.3f}')")
echo "rate_limit=$limit our_rps=$((limit * 4)) concurrency=8 tasks=$n requests=$req throttled_429=$throttled served=$served $(overhead $served $windows) seconds=$s ideal_s=$ideal ratio=$tr peak_rss_mb=$rss"
echo "latency_ratio=$worst throttled_ratio=$tr throttled_share=$share"
