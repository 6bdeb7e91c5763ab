"""Runs one report (or all) against a tasksync data directory with DuckDB.

Usage: python3 reports/run.py DATA_DIR [REPORT ...] [--var NAME=VALUE ...] [--csv]
REPORT is a file name in reports/ without .sql; none means every report.
"""
import argparse
import pathlib
import sys

import duckdb

HERE = pathlib.Path(__file__).resolve().parent


def reports():
    return sorted(p.stem for p in HERE.glob("*.sql") if not p.name.startswith("_"))


def connect(data_dir, variables=()):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET VARIABLE data_dir = ?", [str(data_dir)])
    for name, value in variables:
        con.execute(f"SET VARIABLE {name} = ?", [value])
    con.execute((HERE / "_tasks.sql").read_text())
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
    args = ap.parse_args()
    variables = [v.split("=", 1) for v in args.var]
    con = connect(args.data_dir, variables)
    for name in args.report or reports():
        if name not in reports():
            sys.exit(f"no report named {name}; there are: {', '.join(reports())}")
        cols, rows = run(con, name)
        print(f"-- {name}: {len(rows)} rows")
        sep = "," if args.csv else " | "
        print(sep.join(cols))
        for row in rows:
            print(sep.join("" if v is None else str(v) for v in row))
        print()


if __name__ == "__main__":
    main()
