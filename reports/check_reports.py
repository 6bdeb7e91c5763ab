"""Checks every report against figures computed independently, in plain Python, from the
simulator's ground truth. Exits non-zero naming the first report and figure that is off.

Usage: python3 reports/check_reports.py DATA_DIR TRUTH.jsonl AS_OF_UNIX [--dbt DATABASE]
TRUTH.jsonl holds one task per line as the simulator defines it (tests/it/reports.rs writes it).
With --dbt, the reports are read from the tables contrib/dbt built in DATABASE (a DuckDB file)
instead of being run here: the same checks then hold the dbt models to the same truth.
"""
import collections
import datetime as dt
import json
import math
import re
import statistics
import sys

import run as runner

UTC = dt.timezone.utc
FINAL = ("success", "fail")


def day(ts):
    return dt.datetime.fromtimestamp(ts, UTC).date()


def fail(report, message):
    sys.exit(f"report {report}: {message}")


def close(a, b, tol):
    return a is None and b is None or (a is not None and b is not None and abs(float(a) - float(b)) <= tol)


# Set by --dbt: the report tables are read as dbt built them, in the order they were written.
FROM_TABLES = False


def rows_of(con, name):
    if FROM_TABLES:
        cur = con.execute(f'SELECT * FROM "{name}"')
        cols, rows = [d[0] for d in cur.description], cur.fetchall()
    else:
        cols, rows = runner.run(con, name)
    return [dict(zip(cols, r)) for r in rows]


def check_success_rate(con, truth):
    expect = collections.defaultdict(lambda: [0, 0, 0])
    for t in truth:
        for dim, value in (("overall", "all"), ("template", t["template_name"]), ("region", t["region"]), ("region_type", t["region_type"])):
            k = (day(t["create_time"]), dim, value or "(none)")
            expect[k][0 if t["status"] == "success" else 1 if t["status"] == "fail" else 2] += 1
    got = {(r["day"], r["dimension"], r["value"]): r for r in rows_of(con, "success_rate_daily")}
    if set(got) != set(expect):
        fail("success_rate_daily", f"groups differ: {sorted(set(got) ^ set(expect))[:5]}")
    for k, (s, f, u) in expect.items():
        r = got[k]
        rate = s / (s + f) if s + f else None
        if (r["success"], r["fail"], r["unfinished"]) != (s, f, u) or not close(r["success_rate"], rate, 0.00011):
            fail("success_rate_daily", f"{k}: got {r}, expected success={s} fail={f} unfinished={u} rate={rate}")
    return len(expect)


def without_urls(message):
    return None if message is None else re.sub(r"""https?://[^\s"']+""", "<url>", message)


def check_failures(con, truth):
    fails = [dict(t, err_message=without_urls(t["err_message"])) for t in truth if t["status"] == "fail"]
    latest = max(day(t["create_time"]) for t in truth)
    counts = collections.Counter((t["err_code"], t["err_message"]) for t in fails)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or ""))[:10]
    got = rows_of(con, "failures_top")
    if len(got) != len(top):
        fail("failures_top", f"{len(got)} rows, expected {len(top)}")
    for r, ((code, msg), n) in zip(got, top):
        days = [latest - day(t["create_time"]) for t in fails if (t["err_code"], t["err_message"]) == (code, msg)]
        last7 = sum(1 for d in days if d.days < 7)
        prev7 = sum(1 for d in days if 7 <= d.days < 14)
        if (r["err_code"], r["err_message"], r["failures"], r["last_7d"], r["prev_7d"]) != (code, msg, n, last7, prev7) or not close(r["share"], n / len(fails), 0.00011):
            fail("failures_top", f"got {r}, expected {(code, msg, n, n / len(fails), last7, prev7)}")
    return len(top)


def check_throughput(con, truth, name, key):
    expect = collections.defaultdict(lambda: [0, 0, 0])
    for t in truth:
        if t["finish_time"] is not None:
            e = expect[key(dt.datetime.fromtimestamp(t["finish_time"], UTC))]
            e[0] += 1
            e[1 if t["status"] == "success" else 2] += 1 if t["status"] in FINAL else 0
    got = rows_of(con, name)
    first = list(got[0])[0]
    got = {key(r[first] if isinstance(r[first], dt.datetime) else dt.datetime.combine(r[first], dt.time())): r for r in got}
    if set(got) != set(expect):
        fail(name, f"periods differ: {sorted(set(got) ^ set(expect))[:5]}")
    for k, (n, s, f) in expect.items():
        if (got[k]["finished"], got[k]["success"], got[k]["fail"]) != (n, s, f):
            fail(name, f"{k}: got {got[k]}, expected finished={n} success={s} fail={f}")
    return len(expect)


def is_quantile(values, q, v):
    """v is a q-quantile of values: at least q of them are <= v and at least 1-q are >= v."""
    n = len(values)
    return sum(1 for x in values if x <= v) >= q * n - 1e-9 and sum(1 for x in values if x >= v) >= (1 - q) * n - 1e-9


def check_turnaround(con, truth):
    groups = collections.defaultdict(list)
    for t in truth:
        if t["finish_time"] is not None:
            groups[t["template_name"] or "(none)"].append(t["finish_time"] - t["create_time"])
    got = {r["template"]: r for r in rows_of(con, "turnaround_by_template")}
    if set(got) != set(groups):
        fail("turnaround_by_template", f"templates differ: {set(got) ^ set(groups)}")
    for k, values in groups.items():
        r = got[k]
        if r["finished"] != len(values) or not close(r["mean_s"], statistics.fmean(values), 0.051):
            fail("turnaround_by_template", f"{k}: got {r}, expected n={len(values)} mean={statistics.fmean(values)}")
        for q, col in ((0.5, "p50_s"), (0.9, "p90_s"), (0.99, "p99_s")):
            if not is_quantile(values, q, r[col]):
                fail("turnaround_by_template", f"{k}: {col}={r[col]} is not a {q} quantile of its {len(values)} durations")
    return len(groups)


def check_bitrate(con, truth):
    groups = collections.defaultdict(list)
    for t in truth:
        if t["status"] == "success" and (t["src_bitrate"] or 0) > 0 and t["dst_bitrate"] is not None:
            groups[t["template_name"] or "(none)"].append(t["dst_bitrate"] / t["src_bitrate"])
    got = {r["template"]: r for r in rows_of(con, "bitrate_ratio_by_template")}
    if set(got) != set(groups):
        fail("bitrate_ratio_by_template", f"templates differ: {set(got) ^ set(groups)}")
    for k, ratios in groups.items():
        r = got[k]
        if r["tasks"] != len(ratios) or not close(r["mean_ratio"], statistics.fmean(ratios), 0.00011) or not close(r["median_ratio"], statistics.median(ratios), 0.00011):
            fail("bitrate_ratio_by_template", f"{k}: got {r}, expected n={len(ratios)} mean={statistics.fmean(ratios)} median={statistics.median(ratios)}")
    return len(groups)


def check_stuck(con, truth, as_of):
    expect = [t["task_id"] for t in sorted(truth, key=lambda t: (t["create_time"], t["task_id"]))
              if t["status"] not in FINAL and t["create_time"] < as_of - 6 * 3600]
    got = [r["task_id"] for r in rows_of(con, "stuck_tasks")]
    if got != expect:
        fail("stuck_tasks", f"{len(got)} tasks, expected {len(expect)}; first difference near {next((a, b) for a, b in zip(got + [None], expect + [None]) if a != b)}")
    return len(expect)


def main():
    global FROM_TABLES
    data_dir, truth_file, as_of = sys.argv[1], sys.argv[2], int(sys.argv[3])
    truth = [json.loads(line) for line in open(truth_file)]
    as_of_text = dt.datetime.fromtimestamp(as_of, UTC).isoformat()
    if sys.argv[4:5] == ["--dbt"]:
        FROM_TABLES = True
        con = runner.duckdb.connect(sys.argv[5], read_only=True)
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        absent = set(runner.reports()) - tables
        if absent:
            sys.exit(f"reports the dbt project did not build: {sorted(absent)}")
    else:
        con = runner.connect(data_dir, [("as_of", as_of_text), ("stuck_age", "6 hours")])
    checked = {
        "success_rate_daily": check_success_rate(con, truth),
        "failures_top": check_failures(con, truth),
        "throughput_hourly": check_throughput(con, truth, "throughput_hourly", lambda d: d.strftime("%Y-%m-%d %H")),
        "throughput_daily": check_throughput(con, truth, "throughput_daily", lambda d: d.strftime("%Y-%m-%d")),
        "turnaround_by_template": check_turnaround(con, truth),
        "bitrate_ratio_by_template": check_bitrate(con, truth),
        "stuck_tasks": check_stuck(con, truth, as_of),
    }
    # stage_durations needs passes over time, not one backfill: tests/it/history.rs checks it
    # against the simulator's timelines with reports/check_stage_durations.py.
    missing = set(runner.reports()) - set(checked) - runner.HISTORY_REPORTS
    if missing:
        sys.exit(f"reports without a check against the truth: {sorted(missing)}")
    for name, n in checked.items():
        if n == 0:
            sys.exit(f"report {name}: the truth gave nothing to compare")
        print(f"{name}: {n} groups match the truth")


if __name__ == "__main__":
    main()
