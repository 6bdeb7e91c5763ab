"""What every report model of contrib/dbt does: run one SQL file of reports/ as it is,
over the `tasks` and `task_history` views the project builds, with the reports' own
variables (as_of, stuck_age, top_n) set from dbt vars when given."""
import pathlib


def find_reports(reports_dir):
    """reports_dir, taken from the project's directory when relative; unset: reports/ as it
    lies in the repository (../../reports) or in the Debian package (../reports)."""
    project = pathlib.Path(__file__).resolve().parent.parent
    candidates = [reports_dir] if reports_dir else ["../../reports", "../reports"]
    for candidate in candidates:
        path = project / candidate
        if (path / "_tasks.sql").exists():
            return path
    raise FileNotFoundError(f"no reports/ at {' or '.join(str(project / c) for c in candidates)}: set the var reports_dir")


def run_report(session, name, reports_dir, report_vars):
    """The rows of reports/<name>.sql, as a DuckDB relation for dbt to materialize. The model
    passes its own `dbt.config.get(...)` values: dbt gives a Python model only the config
    keys its own file asks for."""
    reports = find_reports(reports_dir)
    for key, value in (report_vars or {}).items():
        if value not in ("", None):
            session.execute(f"SET VARIABLE {key} = ?", [value])
    sql = (reports / f"{name}.sql").read_text()
    return session.sql(sql.strip().rstrip(";"))
