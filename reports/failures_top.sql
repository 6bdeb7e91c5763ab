-- Why does transcoding fail? The top N (err_code, err_message) pairs among failed tasks,
-- their share of all failures, and their trend: failures created in the last 7 days of
-- the data versus the 7 days before. URLs in messages read <url>, so that one cause that
-- names each task's file counts as one cause.
-- Run: python3 reports/run.py DATA_DIR failures_top [--var top_n=10]
WITH f AS (
    SELECT * REPLACE (regexp_replace(err_message, 'https?://[^\s"'']+', '<url>', 'g') AS err_message)
    FROM tasks WHERE status = 'fail'
),
latest AS (SELECT max(create_date) AS d FROM tasks)
SELECT
    err_code, err_message,
    count(*) AS failures,
    round(count(*) / (SELECT count(*) FROM f), 4) AS share,
    count(*) FILTER (WHERE create_date > (SELECT d FROM latest) - 7) AS last_7d,
    count(*) FILTER (WHERE create_date <= (SELECT d FROM latest) - 7
                       AND create_date > (SELECT d FROM latest) - 14) AS prev_7d
FROM f
GROUP BY ALL
ORDER BY failures DESC, err_code, err_message
LIMIT coalesce(getvariable('top_n'), 10);
