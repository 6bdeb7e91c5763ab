# Shared by the bench scripts (sourced): reading what `/usr/bin/time -v` wrote.

# seconds FILE: the wall-clock time, in seconds.
seconds() {
    grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | python3 -c 'import sys; p = sys.stdin.read().strip().split(":"); print(f"{sum(float(x) * 60 ** i for i, x in enumerate(reversed(p))):.2f}")'
}

