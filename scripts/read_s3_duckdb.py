"""Reads a tasksync data set on S3 the way analysts do in DuckDB: httpfs, a secret with the
endpoint, read_parquet over tasks/**/*.parquet with hive partitioning. Prints
`rows distinct_task_ids first_date`.

Usage: python3 scripts/read_s3_duckdb.py HOST:PORT s3://BUCKET/PREFIX
Needs duckdb==1.4.4 and duckdb-ext-httpfs==1.4.4.* (the extension shipped as a wheel:
DuckDB's own INSTALL httpfs downloads from the internet). .ci/run puts both in the
virtualenv target/duckdb-s3, apart from the DuckDB 2.0.1 the reports use.
"""
import os
import sys

import duckdb
import duckdb_ext

endpoint, url = sys.argv[1], sys.argv[2].rstrip("/")
extensions = os.path.join(list(duckdb_ext.__path__)[0], "extensions")
con = duckdb.connect(config={"extension_directory": extensions, "autoinstall_known_extensions": False})
con.execute("LOAD httpfs")
con.execute(
    "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's', REGION 'us-east-1', "
    f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"
)
rows, distinct, first = con.execute(
    f"SELECT count(*), count(DISTINCT task_id), min(create_date) "
    f"FROM read_parquet('{url}/tasks/**/*.parquet', hive_partitioning = true)"
).fetchone()
print(rows, distinct, first)
