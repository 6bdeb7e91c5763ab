//! `tasksync demo` end to end, read back by DuckDB the way analysts read it.
//! Needs the DuckDB Python package (`.ci/run` installs it).

use std::process::Command;

use crate::common::bin;

#[test]
fn the_demo_output_reads_in_duckdb_with_one_row_per_task_and_timestamp_columns() {
    let dir = tempfile::tempdir().unwrap();
    let demo = bin().arg("demo").current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&demo.stdout).into_owned();
    assert!(demo.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&demo.stderr));
    assert!(stdout.contains("exact") && stdout.contains("read_parquet("), "{stdout}");
    the_output_tells_one_line_per_step_and_the_log_goes_to_its_file(&stdout, &demo.stderr, dir.path());
    let stored: usize = stdout
        .lines()
        .find_map(|l| l.split("rows stored: ").nth(1))
        .and_then(|l| l.split(';').next())
        .unwrap()
        .parse()
        .unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check_duckdb.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("demo-data"))
        .arg(stored.to_string())
        .output()
        .expect("python3 runs");
    let report = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(!report.contains("No module named 'duckdb'"), "install DuckDB for Python first: pip install duckdb");
    assert!(check.status.success(), "{report}");
    assert!(report.contains(&format!("{stored} rows, {stored} distinct task_ids")), "{report}");

    // The query over task_history it prints runs; as of a moment after every pass it gives
    // exactly what tasks/ holds now, and as of the first pass something else.
    let history = stdout.lines().find(|l| l.contains("/task_history/")).expect("the demo prints a task_history query");
    let sql = history.split("duckdb -c \"").nth(1).and_then(|q| q.strip_suffix('"')).expect("a quoted query");
    let as_of = sql.split("TIMESTAMPTZ '").nth(1).and_then(|t| t.split('\'').next()).unwrap().to_string();
    let now_sql = sql.replace(&as_of, "2100-01-01T00:00:00Z");
    let tasks_sql = format!(
        "SELECT status, count(*) AS tasks FROM read_parquet('{}/tasks/**/*.parquet') WHERE deleted_at IS NULL GROUP BY ALL ORDER BY ALL",
        dir.path().join("demo-data").display()
    );
    let query = |q: &str| {
        let code = "import duckdb, sys; print(duckdb.connect().execute(sys.argv[1]).fetchall())";
        let out = Command::new("python3").args(["-c", code, q]).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{q}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (then, now, tasks) = (query(sql), query(&now_sql), query(&tasks_sql));
    assert_eq!(now, tasks, "the current versions are the rows of tasks/");
    assert!(then != now && then.contains("running"), "a day earlier tasks were still running: {then}");

    // The page-of-charts command the demo prints works as printed (from the project's root).
    let page_cmd = stdout.lines().find(|l| l.contains("--html report.html")).expect("the demo prints the page command");
    let run_only = page_cmd
        .split("&& ")
        .last()
        .unwrap()
        .replace("reports/run.py", concat!(env!("CARGO_MANIFEST_DIR"), "/reports/run.py"));
    let page = Command::new("sh").arg("-c").arg(&run_only).current_dir(dir.path()).output().unwrap();
    assert!(page.status.success(), "{run_only}: {}", String::from_utf8_lossy(&page.stderr));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Which tasks are stuck?") && html.contains("How often does transcoding succeed?"));

    // A second demo in the same place re-lists only the newest sync.settle of its backfill
    // (never recorded done) and changes nothing.
    let again = bin().arg("demo").current_dir(dir.path()).output().unwrap();
    assert!(again.status.success());
    let said = String::from_utf8_lossy(&again.stdout);
    let backfill = said.lines().find_map(|l| l.trim_start().strip_prefix("backfill:")).unwrap_or_default();
    assert!(backfill.contains("windows=1 ") && backfill.contains("new=0 changed=0 deleted=0"), "{said}");
    assert!(backfill.contains("files_written=0"), "{said}");
}

/// The demo's output as a new user reads it: a heading, the five steps in order, each one
/// line, then the figures and the queries; nothing of the log on the terminal, all of it in
/// demo-data/demo.log.
fn the_output_tells_one_line_per_step_and_the_log_goes_to_its_file(stdout: &str, stderr: &[u8], dir: &std::path::Path) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("tasksync demo: ") && lines[0].contains("demo-data/demo.log"), "{stdout}");
    let steps: Vec<&str> =
        lines.iter().copied().filter(|l| l.starts_with("  ") && l.as_bytes().get(3) == Some(&b'.')).collect();
    let names: Vec<&str> = steps.iter().map(|l| l[5..].split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!(names, ["simulator", "backfill", "passes", "reconcile", "verify"], "{stdout}");
    assert_eq!(lines[1..6], steps[..], "the steps come first, one line each: {stdout}");
    for heading in ["Figures (", "`tasksync verify` on it:", "Try it in DuckDB:"] {
        assert!(lines.iter().any(|l| l.starts_with(heading)), "{heading} is missing: {stdout}");
    }
    assert!(lines.len() < 40, "about a screen, not the log ({} lines): {stdout}", lines.len());
    assert!(stderr.is_empty(), "the log stays off the terminal: {}", String::from_utf8_lossy(stderr));
    let log = std::fs::read_to_string(dir.join("demo-data/demo.log")).expect("the full log is in demo-data/demo.log");
    assert!(log.contains("Window done") && log.contains("Pass finished") && log.lines().count() > 50, "{log}");
}
