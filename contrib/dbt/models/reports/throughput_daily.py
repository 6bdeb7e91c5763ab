from tasksync_reports import run_report


def model(dbt, session):
    """reports/throughput_daily.sql, as it is: tasks finished per UTC day, by outcome."""
    dbt.ref("tasks")
    return run_report(session, "throughput_daily", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
