//! Every DuckDB report in reports/ against figures computed independently from the
//! simulator's ground truth (reports/check_reports.py), run by reports/run.py and as the
//! models of the dbt project in contrib/dbt, whose contract tests must also fail on a data
//! set that breaks the contract. Needs DuckDB for Python, and dbt-duckdb in target/dbt
//! (`.ci/run` installs both).

use std::io::Write;
use std::process::Command;

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::SimOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_matches_the_simulators_truth() {
    // 16 days, so that the failure trend's two 7-day halves both hold data.
    let days = 16;
    let now = D0 + days * DAY + 2 * 3600;
    let world = Scenario::start(spec(50, 24_000, days), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + days * DAY);
    world.backfill(now, range).await.unwrap();

    let truth_path = dir.path().join("truth.jsonl");
    let mut truth_file = std::io::BufWriter::new(std::fs::File::create(&truth_path).unwrap());
    for t in sim.sim.truth(range.start, range.end, false) {
        let line = serde_json::json!({
            "task_id": t.task_id, "status": t.status, "err_code": t.err_code, "err_message": t.err_message,
            "create_time": t.create_time, "finish_time": t.finish_time, "src_bitrate": t.src_bitrate,
            "dst_bitrate": t.dst_bitrate, "template_name": t.template_name, "region": t.region, "region_type": t.region_type,
        });
        writeln!(truth_file, "{line}").unwrap();
    }
    drop(truth_file);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/reports/check_reports.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("out"))
        .arg(&truth_path)
        .arg(now.to_string())
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");
    for name in [
        "success_rate_daily",
        "failures_top",
        "throughput_hourly",
        "throughput_daily",
        "turnaround_by_template",
        "bitrate_ratio_by_template",
        "stuck_tasks",
    ] {
        assert!(report.contains(&format!("{name}: ")), "{name} was not checked: {report}");
    }
    eprintln!("{report}");

    // The same reports as dbt models, held to the same truth.
    let db = dir.path().join("dbt.duckdb");
    let built = dbt(&["build"], &dir.path().join("out"), &db, now);
    assert!(built.status.success(), "dbt build failed:\n{}", text(&built));
    let out = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("out"))
        .arg(&truth_path)
        .arg(now.to_string())
        .args(["--dbt".as_ref(), db.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "the dbt models differ from the truth:\n{}", text(&out));
    for name in ["success_rate_daily", "throughput_hourly", "stuck_tasks"] {
        assert!(text(&out).contains(&format!("{name}: ")), "{name} was not checked: {}", text(&out));
    }
    broken_contracts_fail_the_dbt_build(dir.path(), now);
}

/// The dbt project's contract tests on copies of the data set broken on purpose: a task_id
/// stored twice, and data whose newest change is years old (a source freshness error).
fn broken_contracts_fail_the_dbt_build(dir: &std::path::Path, now: i64) {
    let copy = dir.join("copy");
    let cp = Command::new("cp").arg("-a").arg(dir.join("out")).arg(&copy).status().unwrap();
    assert!(cp.success());
    let day = std::fs::read_dir(copy.join("tasks")).unwrap().next().unwrap().unwrap().path();
    let planted = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_parquet('{0}/part-0.parquet') LIMIT 1) TO '{0}/part-1.parquet' (FORMAT parquet)\")",
            day.display()
        ))
        .output()
        .unwrap();
    assert!(planted.status.success(), "{}", text(&planted));
    let db = dir.join("broken.duckdb");
    let built = dbt(&["build"], &copy, &db, now);
    assert!(!built.status.success(), "dbt build passed a data set with a task_id twice:\n{}", text(&built));
    assert!(text(&built).contains("FAIL 1 unique_tasks_task_id"), "the unique test names it:\n{}", text(&built));

    // Changed years before the wall clock: stale past error_after.
    let fresh = dbt(&["source", "freshness"], &dir.join("out"), &db, now);
    assert!(!fresh.status.success(), "2021's data passed a freshness check in {}:\n{}", now, text(&fresh));
    assert!(text(&fresh).contains("ERROR STALE"), "{}", text(&fresh));
}

/// Runs dbt (target/dbt, as `.ci/run` installs it) on contrib/dbt over `data`, into `db`.
fn dbt(args: &[&str], data: &std::path::Path, db: &std::path::Path, as_of: i64) -> std::process::Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let as_of = chrono::DateTime::from_timestamp(as_of, 0).unwrap().to_rfc3339();
    let vars = format!("{{data_dir: '{}', as_of: '{as_of}', stuck_age: '6 hours'}}", data.display());
    let work = db.with_extension("dbt");
    Command::new(format!("{root}/target/dbt/bin/dbt"))
        .args(args)
        .args(["--project-dir", &format!("{root}/contrib/dbt"), "--profiles-dir", &format!("{root}/contrib/dbt")])
        .args(["--no-version-check", "--no-use-colors", "--vars", &vars])
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_TARGET_PATH", work.join("target"))
        .env("DBT_LOG_PATH", work.join("logs"))
        .env("TASKSYNC_DBT_DB", db)
        .env("TASKSYNC_DBT_MODULES", format!("{root}/contrib/dbt/python"))
        .output()
        .expect("dbt-duckdb is installed in target/dbt (.ci/run installs it)")
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
