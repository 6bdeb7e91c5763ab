"""Compares tasksync's Parquet layout with DuckDB's own COPY of the same rows: bytes on disk
and the time of every report (median of N runs). Prints one line per figure.

Usage: python3 reports/bench_layout.py DATA_DIR [RUNS]
"""
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import run as runner


def size(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*.parquet"))


def time_reports(data_dir, runs):
    con = runner.connect(data_dir, [("as_of", "2100-01-01 00:00:00+00")])
    out = {}
    for name in runner.reports():
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            runner.run(con, name)
            samples.append(time.perf_counter() - t)
        out[name] = statistics.median(samples)
    return out


def main():
    data_dir = pathlib.Path(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    copy_dir = pathlib.Path(tempfile.mkdtemp(prefix="duckdb-copy-"))
    try:
        con = runner.connect(data_dir)
        rows = con.execute("SELECT count(*) FROM tasks").fetchone()[0]
        con.execute(f"COPY (SELECT * FROM tasks ORDER BY create_time) TO '{copy_dir}/tasks' "
                    "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (create_date))")
        ours, theirs = size(data_dir / "tasks"), size(copy_dir / "tasks")
        print(f"rows={rows}")
        print(f"bytes tasksync={ours} duckdb_copy={theirs} ratio={ours / theirs:.3f}")
        print(f"bytes_per_row tasksync={ours / rows:.1f} duckdb_copy={theirs / rows:.1f}")
        a, b = time_reports(data_dir, runs), time_reports(copy_dir, runs)
        for name in a:
            print(f"report {name}: tasksync={a[name] * 1000:.1f}ms duckdb_copy={b[name] * 1000:.1f}ms")
        print(f"reports_total tasksync={sum(a.values()) * 1000:.1f}ms duckdb_copy={sum(b.values()) * 1000:.1f}ms")
    finally:
        shutil.rmtree(copy_dir)


if __name__ == "__main__":
    main()
