-- How much gets done? Tasks finished per hour (UTC, by finish_time), split by outcome.
-- Run: python3 reports/run.py DATA_DIR throughput_hourly
SELECT
    date_trunc('hour', timezone('UTC', finish_time)) AS hour_utc,
    count(*) AS finished,
    count(*) FILTER (WHERE status = 'success') AS success,
    count(*) FILTER (WHERE status = 'fail') AS fail
FROM tasks
WHERE finish_time IS NOT NULL
GROUP BY ALL
ORDER BY hour_utc;
