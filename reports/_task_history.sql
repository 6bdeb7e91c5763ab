-- The view of task_history (SCD type 2: one row per version a pass saw), with the hive
-- partition column create_date. run.py reads it when the data set has a task_history/.
-- State as of T: WHERE valid_from <= T AND (valid_to > T OR valid_to IS NULL)
CREATE OR REPLACE VIEW task_history AS
SELECT * FROM read_parquet(getvariable('data_dir') || '/task_history/**/*.parquet', hive_partitioning = true);
