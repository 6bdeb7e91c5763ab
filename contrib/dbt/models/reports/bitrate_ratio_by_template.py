from tasksync_reports import run_report


def model(dbt, session):
    """reports/bitrate_ratio_by_template.sql, as it is: the dst/src bitrate ratio of successful tasks per template."""
    dbt.ref("tasks")
    return run_report(session, "bitrate_ratio_by_template", dbt.config.get("reports_dir"), dbt.config.get("report_vars"))
