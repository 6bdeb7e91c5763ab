-- The shared view every report reads: the whole data set, one row per task_id, with the
-- hive partition column create_date (DATE, the UTC day of create_time).
-- Run first, after setting the data directory (storage.output_dir):
--   duckdb -c "SET VARIABLE data_dir = '/var/lib/tasksync/parquet'; .read reports/_tasks.sql; .read reports/success_rate_daily.sql"
-- or: python3 reports/run.py /var/lib/tasksync/parquet success_rate_daily
CREATE OR REPLACE VIEW tasks AS
SELECT * FROM read_parquet(getvariable('data_dir') || '/tasks/**/*.parquet', hive_partitioning = true);
