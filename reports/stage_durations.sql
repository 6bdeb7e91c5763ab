-- Where does the time go? Per template and day (UTC create date), p50 and p90 of the
-- seconds tasks spent in each stage (pending, downloading, running, uploading), read from
-- task_history (storage.history = true, the default).
--
-- Resolution: a stage is seen only by the passes that ran while a task was in it, so a
-- stage's start and end are the first pass that saw it and the first pass that saw the
-- next state, each up to one schedule period (sync.schedule) after the fact. A figure is
-- therefore exact to within one period, and a stage shorter than the period may never be
-- seen at all. How the report treats that:
--   * `pending`, when it is the first state seen, starts at create_time (exact); every
--     other stage at the first pass that saw it;
--   * a stage is measured only where both its start and its end were seen: the task was
--     seen in an earlier stage first (or the stage is `pending`), and later in another
--     live state; a task first seen mid-stage, still in it, or deleted in it counts in no
--     figure of that stage;
--   * a stage no pass saw is absent for that task, and its time is counted in the stage
--     seen before it (whose end is the first pass that saw a later state);
--   * `measured` is how many tasks each figure is of.
-- Run: python3 reports/run.py DATA_DIR stage_durations
WITH v AS (
    SELECT
        create_date, task_id, coalesce(template_name, '(none)') AS template, status,
        create_time, valid_from, valid_to, deleted_at, observed_seq,
        lag(status) OVER w AS prev_status,
        lead(status) OVER w AS next_status,
        lead(deleted_at) OVER w AS next_deleted,
        row_number() OVER w AS n
    FROM task_history
    WINDOW w AS (PARTITION BY create_date, task_id ORDER BY observed_seq)
), runs AS (
    -- A run: consecutive versions in one status (a field corrected mid-stage adds a version).
    SELECT *, sum(CASE WHEN prev_status IS DISTINCT FROM status THEN 1 ELSE 0 END)
        OVER (PARTITION BY create_date, task_id ORDER BY observed_seq) AS run
    FROM v
), stages AS (
    SELECT
        create_date, task_id, template, status, run,
        min(n) AS first_n,
        min(create_time) AS created,
        min(valid_from) AS entered,
        max(valid_to) AS left_at,
        bool_and(deleted_at IS NULL) AS live,
        bool_or(valid_to IS NOT NULL AND next_status IS DISTINCT FROM status AND next_deleted IS NULL) AS left_it
    FROM runs
    GROUP BY ALL
), measured AS (
    SELECT
        create_date, template, status AS stage,
        epoch(left_at) - epoch(CASE WHEN first_n = 1 THEN created ELSE entered END) AS seconds
    FROM stages
    WHERE status IN ('pending', 'downloading', 'running', 'uploading')
      AND live AND left_it AND (first_n > 1 OR status = 'pending')
)
SELECT * FROM (
    SELECT
        create_date AS day,
        template,
        stage,
        count(*) AS measured,
        quantile_disc(seconds, 0.5) AS p50_s,
        quantile_disc(seconds, 0.9) AS p90_s
    FROM measured
    GROUP BY ALL
)
ORDER BY day, template, list_position(['pending', 'downloading', 'running', 'uploading'], stage);
