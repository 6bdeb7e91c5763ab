from tasksync_reports import run_report


def model(dbt, session):
    """reports/failures_top.sql, as it is: the top failure causes, with their share and trend."""
    dbt.ref("tasks")
    return run_report(session, "failures_top", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
