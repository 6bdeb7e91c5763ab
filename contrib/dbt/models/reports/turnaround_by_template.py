from tasksync_reports import run_report


def model(dbt, session):
    """reports/turnaround_by_template.sql, as it is: duration_s percentiles and mean per template."""
    dbt.ref("tasks")
    return run_report(session, "turnaround_by_template", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
