-- How much smaller? The output/input bitrate ratio (dst_bitrate / src_bitrate, both
-- kbit/s) of successful tasks by template: mean and median, over tasks with both bitrates.
-- Run: python3 reports/run.py DATA_DIR bitrate_ratio_by_template
SELECT
    coalesce(template_name, '(none)') AS template,
    count(*) AS tasks,
    round(avg(dst_bitrate / src_bitrate), 4) AS mean_ratio,
    round(median(dst_bitrate / src_bitrate), 4) AS median_ratio
FROM tasks
WHERE status = 'success' AND src_bitrate > 0 AND dst_bitrate IS NOT NULL
GROUP BY ALL
ORDER BY template;
