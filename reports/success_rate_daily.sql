-- How often does transcoding succeed? Per day of creation (UTC), overall and by template,
-- region and region_type: success / (success + fail), with the counts. Tasks not yet
-- final are excluded from the rate and counted apart (unfinished).
-- Run: python3 reports/run.py DATA_DIR success_rate_daily
WITH t AS (
    SELECT create_date AS day, status, template_name, region, region_type FROM tasks
),
dims AS (
    SELECT day, 'overall' AS dimension, 'all' AS value, status FROM t
    UNION ALL SELECT day, 'template', coalesce(template_name, '(none)'), status FROM t
    UNION ALL SELECT day, 'region', coalesce(region, '(none)'), status FROM t
    UNION ALL SELECT day, 'region_type', coalesce(region_type, '(none)'), status FROM t
)
SELECT
    day, dimension, value,
    count(*) FILTER (WHERE status = 'success') AS success,
    count(*) FILTER (WHERE status = 'fail') AS fail,
    count(*) FILTER (WHERE status IS NULL OR status NOT IN ('success', 'fail')) AS unfinished,
    round(count(*) FILTER (WHERE status = 'success')
          / nullif(count(*) FILTER (WHERE status IN ('success', 'fail')), 0), 4) AS success_rate
FROM dims
GROUP BY ALL
ORDER BY day, dimension, value;
