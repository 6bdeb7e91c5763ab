-- The whole data set, one row per task_id: the view every report reads as `tasks`.
select * from {{ source('tasksync', 'tasks') }}
