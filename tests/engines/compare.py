"""Reads a tasksync data set with DuckDB, Polars and Spark and prints, per engine, what
tests/it/scale_out_readers.rs compares: rows, distinct task_ids, the create_time range (unix
seconds), the partitions, and each column's type, normalized across the engines.

Usage: python3 tests/engines/compare.py OUTPUT_DIR   (prints one JSON object)
"""

import json
import os
import sys


def kind(name):
    """An engine's type name, as one of: string, int, float, timestamp, date, bool."""
    n = name.lower()
    for word, k in [("timestamp", "timestamp"), ("datetime", "timestamp"), ("date", "date"),
                    ("varchar", "string"), ("string", "string"), ("utf8", "string"),
                    ("bigint", "int"), ("int64", "int"), ("long", "int"), ("integer", "int"),
                    ("double", "float"), ("float", "float"), ("bool", "bool")]:
        if word in n:
            return k
    return n


def duckdb_view(tasks):
    import duckdb
    con = duckdb.connect()
    rel = f"read_parquet('{tasks}/*/*.parquet', hive_partitioning = true)"
    rows, ids, lo, hi = con.execute(
        f"SELECT count(*), count(DISTINCT task_id), epoch(min(create_time))::BIGINT, "
        f"epoch(max(create_time))::BIGINT FROM {rel}").fetchone()
    parts = sorted(str(r[0]) for r in con.execute(f"SELECT DISTINCT create_date FROM {rel}").fetchall())
    types = {r[0]: kind(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    return dict(rows=rows, task_ids=ids, min_create=lo, max_create=hi, partitions=parts, types=types)


def polars_view(tasks):
    import polars as pl
    lf = pl.scan_parquet(f"{tasks}/*/*.parquet", hive_partitioning=True)
    df = lf.select(
        pl.len().alias("rows"),
        pl.col("task_id").n_unique().alias("ids"),
        pl.col("create_time").min().dt.epoch("s").alias("lo"),
        pl.col("create_time").max().dt.epoch("s").alias("hi"),
    ).collect()
    parts = sorted(str(v) for v in lf.select(pl.col("create_date").unique()).collect()["create_date"].to_list())
    types = {name: kind(str(dtype)) for name, dtype in lf.collect_schema().items()}
    r = df.row(0)
    return dict(rows=r[0], task_ids=r[1], min_create=r[2], max_create=r[3], partitions=parts, types=types)


def spark_view(tasks):
    from pyspark.sql import SparkSession, functions as F
    spark = (SparkSession.builder.master("local[2]").appName("tasksync-readers")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "1g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(tasks)
    r = df.agg(F.count("*"), F.countDistinct("task_id"), F.min("create_time").cast("long"),
               F.max("create_time").cast("long")).collect()[0]
    parts = sorted(str(row[0]) for row in df.select("create_date").distinct().collect())
    types = {f.name: kind(f.dataType.simpleString()) for f in df.schema.fields}
    spark.stop()
    return dict(rows=r[0], task_ids=r[1], min_create=r[2], max_create=r[3], partitions=parts, types=types)


def main():
    tasks = os.path.join(sys.argv[1], "tasks")
    print(json.dumps({"duckdb": duckdb_view(tasks), "polars": polars_view(tasks), "spark": spark_view(tasks)}))


if __name__ == "__main__":
    main()
