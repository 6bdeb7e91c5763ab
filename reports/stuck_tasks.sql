-- Which tasks are stuck? Tasks not final (neither success nor fail) although created more
-- than stuck_age before as_of, oldest first. As the data holds the latest state the sync
-- has seen, run it against a fresh data set.
-- Run: python3 reports/run.py DATA_DIR stuck_tasks [--var stuck_age='6 hours'] [--var as_of='2021-10-15 00:00:00+00']
SELECT task_id, status, create_time, template_name, region,
       coalesce(getvariable('as_of')::TIMESTAMPTZ, now()) - create_time AS age
FROM tasks
WHERE (status IS NULL OR status NOT IN ('success', 'fail'))
  AND create_time < coalesce(getvariable('as_of')::TIMESTAMPTZ, now())
                    - coalesce(getvariable('stuck_age'), '6 hours')::INTERVAL
ORDER BY create_time, task_id;
