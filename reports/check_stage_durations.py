"""Checks reports/stage_durations.sql against the simulator's ground truth: each task's
timeline (the seconds it spends in each stage) and the times of the passes that observed
it. Exits non-zero naming the first figure that is off.

Usage: python3 reports/check_stage_durations.py DATA_DIR TIMELINES.jsonl PASSES SETTLE
TIMELINES has one task per line: task_id, create_time, template_name, phases (seconds in
pending, downloading, running, uploading) and end ("success", "fail" or "stuck" in the
stage of index stuck_in). PASSES is a comma-separated list of pass times (unix seconds); a
pass at t lists every task created before t - SETTLE.

Two things are checked:
1. The report equals what the definition in docs/analysts.md gives when applied to the statuses the
   passes could see (computed here from the timelines alone, never from the data set).
2. The resolution the report states: each measured stage is within one schedule period
   of the time the task really spent there (plus stages no pass saw, which the report
   counts in the stage seen before them).
"""
import datetime as dt
import json
import math
import sys
from collections import defaultdict

import run as runner

STAGES = ["pending", "downloading", "running", "uploading"]


def status_at(t, now):
    """The status of task t at time `now` (created by then), as the simulator says."""
    at = t["create_time"]
    for i, p in enumerate(t["phases"]):
        if t["end"] == "stuck" and t["stuck_in"] == i:
            return STAGES[i]
        at += p
        if now < at:
            return STAGES[i]
    return "uploading" if t["end"] == "stuck" else t["end"]


def true_start(t, status):
    """When the task really entered `status` (a stage, or its final status)."""
    at = t["create_time"]
    for i, p in enumerate(t["phases"]):
        if STAGES[i] == status:
            return at
        at += p
    return at


def observed_stages(t, passes, settle):
    """(stage, seconds, true seconds) of each stage the passes saw begin and end."""
    seen = [(p, status_at(t, p)) for p in passes if t["create_time"] < p - settle]
    runs = []
    for at, status in seen:
        if not runs or runs[-1][1] != status:
            runs.append((at, status))
    out = []
    for i, (at, status) in enumerate(runs):
        if status not in STAGES or i + 1 >= len(runs):
            continue
        if status != "pending" and i == 0:
            continue
        start = t["create_time"] if i == 0 else at
        end, next_status = runs[i + 1]
        out.append((status, end - start, true_start(t, next_status) - true_start(t, status)))
    return out


def quantile_disc(values, q):
    """DuckDB's quantile_disc, the nearest rank: the value at index ceil(q * n) - 1 of the
    sorted values (checked against DuckDB for n up to 39)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def fail(message):
    sys.exit(f"stage_durations: {message}")


def main():
    data_dir, timelines, passes, settle = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    passes = sorted(int(p) for p in passes.split(","))
    period = max(b - a for a, b in zip(passes, passes[1:]))
    groups = defaultdict(list)
    for line in open(timelines):
        t = json.loads(line)
        day = dt.datetime.fromtimestamp(t["create_time"], dt.timezone.utc).date()
        for stage, seconds, truth in observed_stages(t, passes, settle):
            if abs(seconds - truth) > period:
                fail(f"task {t['task_id']} {stage}: measured {seconds}s, really {truth}s: more than one period ({period}s) off")
            groups[(day, t["template_name"], stage)].append(seconds)
    con = runner.connect(data_dir)
    cols, rows = runner.run(con, "stage_durations")
    got = {(r[0], r[1], r[2]): dict(zip(cols, r)) for r in rows}
    if set(got) != set(groups):
        fail(f"groups differ: only in the report {sorted(set(got) - set(groups))[:5]}, "
             f"only in the truth {sorted(set(groups) - set(got))[:5]}")
    for key, values in sorted(groups.items()):
        r = got[key]
        expect = (len(values), quantile_disc(values, 0.5), quantile_disc(values, 0.9))
        have = (r["measured"], r["p50_s"], r["p90_s"])
        if have != expect:
            fail(f"{key}: got measured, p50, p90 = {have}, expected {expect}")
    stages = {k[2] for k in groups}
    print(f"stage_durations: {len(groups)} groups match the truth ({sum(map(len, groups.values()))} "
          f"stage times, stages {sorted(stages)}, each within {period}s of the real time)")


if __name__ == "__main__":
    main()
