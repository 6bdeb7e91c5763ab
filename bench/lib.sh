# Shared by the bench scripts (sourced): reading what `/usr/bin/time -v` wrote, starting the
# simulator, and writing a run's config.

# seconds FILE: the wall-clock time, in seconds.
seconds() {
    grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | python3 -c 'import sys; p = sys.stdin.read().strip().split(":"); print(f"{sum(float(x) * 60 ** i for i, x in enumerate(reversed(p))):.2f}")'
}


# start_sim BIN PORT TASKS DAYS END [FLAGS...]: the simulator in the background, frozen at
# END, seed 7; sets $sim to its pid and returns once it answers.
start_sim() {
    local bin=$1 port=$2 tasks=$3 days=$4 end=$5; shift 5
    "$bin" simulate --listen 127.0.0.1:$port --tasks "$tasks" --days "$days" --end "$end" --seed 7 --freeze "$@" 2>/dev/null &
    sim=$!
    while ! curl -s "127.0.0.1:$port/_sim/stats" >/dev/null; do sleep 0.3; done
}

# sim_stat PORT FIELD: one figure of the simulator's /_sim/stats (requests, throttled, ...).
sim_stat() {
    curl -s "127.0.0.1:$1/_sim/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# bench_config FILE PORT OUTPUT_DIR STATE_DB [API_KEYS] [MORE_TOML]: the config of a bench
# run against the simulator on PORT, unsigned. API_KEYS replaces the default
# (page size 100, concurrency 4, no rate limit); MORE_TOML is appended ([sync], [storage.s3]).
bench_config() {
    local api=${5:-$'page_size = 100\nconcurrency = 4\nrequests_per_second = 100000'}
    cat > "$1" <<TOML
[api]
base_url = "http://127.0.0.1:$2"
$api
auth = "none"
[storage]
output_dir = "$3"
state_db = "$4"
${6:-}
TOML
}
