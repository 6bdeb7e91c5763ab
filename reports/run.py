"""Runs one report (or all) against a tasksync data directory with DuckDB.

Usage: python3 reports/run.py DATA_DIR [REPORT ...] [--var NAME=VALUE ...] [--csv]
       python3 reports/run.py DATA_DIR --html report.html [--var NAME=VALUE ...]
REPORT is a file name in reports/ without .sql; none means every report. --html writes one
self-contained page of charts (reports/html_page.py) from the same SQL.
"""
import argparse
import pathlib
import sys

import duckdb

HERE = pathlib.Path(__file__).resolve().parent


def reports():
    return sorted(p.stem for p in HERE.glob("*.sql") if not p.name.startswith("_"))


def partitions(data_dir):
    """The Parquet files a report would read; exits with a sentence when there are none."""
    root = pathlib.Path(data_dir)
    files = sorted(root.glob("tasks/create_date=*/*.parquet"))
    if not files:
        where = "does not exist" if not root.exists() else "holds no tasks/create_date=*/*.parquet"
        sys.exit(f"{data_dir} {where}: give the data set's directory (storage.output_dir) after a sync has written to it")
    return files


# Reports that read task_history/ (storage.history = true, the default).
HISTORY_REPORTS = {"stage_durations"}


def has_history(data_dir):
    return any(pathlib.Path(data_dir).glob("task_history/create_date=*/*.parquet"))


def connect(data_dir, variables=()):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE data_dir = ?", [str(data_dir)])
    for name, value in variables:
        con.execute(f"SET VARIABLE {name} = ?", [value])
    con.execute((HERE / "_tasks.sql").read_text())
    if has_history(data_dir):
        con.execute((HERE / "_task_history.sql").read_text())
    return con


def run(con, name):
    """Returns (column names, rows) of one report."""
    cur = con.execute((HERE / f"{name}.sql").read_text())
    return [d[0] for d in cur.description], cur.fetchall()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir")
    ap.add_argument("report", nargs="*")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE")
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--html", metavar="PAGE", help="write one self-contained HTML page of charts to PAGE")
    args = ap.parse_args()
    for name in args.report:
        if name not in reports():
            sys.exit(f"no report named {name}; there are: {', '.join(reports())}")
    if args.html and args.report:
        sys.exit("--html writes the whole page; name no reports with it")
    variables = []
    for v in args.var:
        if "=" not in v:
            sys.exit(f"--var {v}: expected NAME=VALUE (e.g. --var stuck_age='6 hours')")
        variables.append(v.split("=", 1))
    partitions(args.data_dir)
    con = connect(args.data_dir, variables)
    if args.html:
        import html_page  # plotly is needed only here
        pathlib.Path(args.html).write_text(html_page.page(con, args.data_dir), encoding="utf-8")
        print(f"Wrote {args.html}: open it in a browser (it works offline)")
        return
    for name in args.report or reports():
        if name in HISTORY_REPORTS and not has_history(args.data_dir):
            print(f"-- {name}: skipped, {args.data_dir} has no task_history/ (storage.history = false)\n")
            continue
        cols, rows = run(con, name)
        print(f"-- {name}: {len(rows)} rows")
        sep = "," if args.csv else " | "
        print(sep.join(cols))
        for row in rows:
            print(sep.join("" if v is None else str(v) for v in row))
        print()


if __name__ == "__main__":
    main()
