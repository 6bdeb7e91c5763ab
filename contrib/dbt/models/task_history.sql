-- Every version of each task: the view the stage report reads as `task_history`.
select * from {{ source('tasksync', 'task_history') }}
