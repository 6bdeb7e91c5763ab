-- In task_history, each task has exactly one current version (valid_to null), and every
-- task of tasks has its versions there (docs/analysts.md, "History: every state a task was seen in").
with versions as (
    select task_id, count(*) filter (where valid_to is null) as current_versions
    from {{ ref('task_history') }}
    group by task_id
)
select t.task_id, coalesce(v.current_versions, 0) as current_versions
from {{ ref('tasks') }} t
left join versions v using (task_id)
where coalesce(v.current_versions, 0) <> 1
union all
select v.task_id, v.current_versions
from versions v
where v.current_versions <> 1 and v.task_id not in (select task_id from {{ ref('tasks') }})
