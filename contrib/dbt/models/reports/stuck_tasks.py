from tasksync_reports import run_report


def model(dbt, session):
    """reports/stuck_tasks.sql, as it is: tasks not final after stuck_age before as_of."""
    dbt.ref("tasks")
    return run_report(session, "stuck_tasks", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
