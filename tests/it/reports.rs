//! Every DuckDB report in reports/ against figures computed independently from the
//! simulator's ground truth (reports/check_reports.py). Needs DuckDB for Python.

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
}
