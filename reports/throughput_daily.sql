-- How much gets done per day? Tasks finished per UTC day (by finish_time), split by outcome.
-- Run: python3 reports/run.py DATA_DIR throughput_daily
SELECT
    CAST(timezone('UTC', finish_time) AS DATE) AS day_utc,
    count(*) AS finished,
    count(*) FILTER (WHERE status = 'success') AS success,
    count(*) FILTER (WHERE status = 'fail') AS fail
FROM tasks
WHERE finish_time IS NOT NULL
GROUP BY ALL
ORDER BY day_utc;
