from tasksync_reports import run_report


def model(dbt, session):
    """reports/success_rate_daily.sql, as it is: success / (success + fail) per creation day, overall and by template, region and region_type."""
    dbt.ref("tasks")
    return run_report(session, "success_rate_daily", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
