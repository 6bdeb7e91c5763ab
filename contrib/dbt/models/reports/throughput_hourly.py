from tasksync_reports import run_report


def model(dbt, session):
    """reports/throughput_hourly.sql, as it is: tasks finished per UTC hour, by outcome."""
    dbt.ref("tasks")
    return run_report(session, "throughput_hourly", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
