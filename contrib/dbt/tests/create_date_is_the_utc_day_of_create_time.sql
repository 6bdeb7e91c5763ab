-- Every row lies in the partition of the UTC day of its create_time (docs/analysts.md).
select task_id, create_time, create_date
from {{ ref('tasks') }}
where create_date <> cast(timezone('UTC', create_time) as date)
