from tasksync_reports import run_report


def model(dbt, session):
    """reports/stage_durations.sql, as it is: p50 and p90 seconds in each stage per template and day."""
    dbt.ref("task_history")
    return run_report(session, "stage_durations", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
