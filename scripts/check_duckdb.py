"""Reads a tasksync output directory the way analysts do (DuckDB, hive partitioning) and
checks the contract: one row per task_id, time columns are timestamps, create_date matches.

Usage: python3 scripts/check_duckdb.py OUTPUT_DIR [EXPECTED_ROWS]
"""
import sys

import duckdb

out = sys.argv[1]
expected = int(sys.argv[2]) if len(sys.argv) > 2 else None
con = duckdb.connect()
con.execute(f"CREATE VIEW tasks AS SELECT * FROM read_parquet('{out}/tasks/**/*.parquet', hive_partitioning = true)")
rows, distinct = con.execute("SELECT count(*), count(DISTINCT task_id) FROM tasks").fetchone()
assert rows > 0, "no rows"
assert rows == distinct, f"{rows} rows but {distinct} distinct task_ids"
if expected is not None:
    assert rows == expected, f"{rows} rows, expected {expected}"
types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE tasks)").fetchall())
for col in ("create_time", "finish_time", "first_seen_at", "changed_at"):
    assert types[col].startswith("TIMESTAMP"), f"{col} is {types[col]}"
for col, kind in (("task_id", "VARCHAR"), ("err_code", "BIGINT"), ("duration_s", "BIGINT"), ("src_bitrate", "DOUBLE"), ("dst_bitrate", "DOUBLE")):
    assert types[col] == kind, f"{col} is {types[col]}, expected {kind}"
wrong = con.execute("SELECT count(*) FROM tasks WHERE CAST(timezone('UTC', create_time) AS DATE) <> CAST(create_date AS DATE)").fetchone()[0]
assert wrong == 0, f"{wrong} rows are in the wrong create_date partition"
bad = con.execute("SELECT count(*) FROM tasks WHERE duration_s IS DISTINCT FROM epoch(finish_time)::BIGINT - epoch(create_time)::BIGINT").fetchone()[0]
assert bad == 0, f"{bad} rows have a duration_s that is not finish_time - create_time"
leaks = con.execute("SELECT count(*) FROM tasks WHERE input_url LIKE '%?%' OR output_url LIKE '%Signature%'").fetchone()[0]
assert leaks == 0, f"{leaks} rows keep a presigned query string"
print(f"duckdb check: {rows} rows, {distinct} distinct task_ids, timestamps {types['create_time']}: ok")
for status, n in con.execute("SELECT status, count(*) FROM tasks GROUP BY ALL ORDER BY 2 DESC").fetchall():
    print(f"  {status}: {n}")
