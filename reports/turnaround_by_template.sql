-- How fast? Turnaround (duration_s = finish_time - create_time, seconds) of finished
-- tasks by template: p50, p90, p99 (nearest-rank quantiles) and the mean.
-- Run: python3 reports/run.py DATA_DIR turnaround_by_template
SELECT
    coalesce(template_name, '(none)') AS template,
    count(*) AS finished,
    quantile_disc(duration_s, 0.5) AS p50_s,
    quantile_disc(duration_s, 0.9) AS p90_s,
    quantile_disc(duration_s, 0.99) AS p99_s,
    round(avg(duration_s), 1) AS mean_s
FROM tasks
WHERE duration_s IS NOT NULL
GROUP BY ALL
ORDER BY template;
