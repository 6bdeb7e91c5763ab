use super::*;
use crate::status::{JobReport, LeftBehindReport};

/// The value of the sample line that starts with `series ` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn report() -> Report {
    let left = |from: &str| LeftBehindReport {
        job_id: "incremental".into(),
        from: from.into(),
        to: "x".into(),
        reason: "r".into(),
        attempts: 1,
        first_at: "x".into(),
        last_at: "x".into(),
        given_up_at: None,
    };
    let job = |id: &str, done: f64, finished: bool| JobReport {
        job_id: id.into(),
        from: "x".into(),
        to: "y".into(),
        done_percent: done,
        finished,
    };
    Report {
        state_db: "s".into(),
        writer_running: true,
        writers: 1,
        cursor: Some("c".into()),
        lag_s: Some(420),
        unfinished: 7,
        oldest_unfinished: None,
        given_up: 2,
        rejects: 0,
        last_success: None,
        last_success_at: Some(1_700_000_000),
        left_behind: vec![left("a"), left("b")],
        jobs: vec![job("backfill:1-2", 25.0, false), job("backfill:3-4", 100.0, true)],
        passes: vec![],
        deleted: 0,
        last_reconcile: None,
        ranges_given_up: 0,
    }
}

#[test]
fn every_family_the_contract_names_is_exposed_with_help_and_type() {
    let text = text::to_prometheus(&Metrics::new().openmetrics());
    let counters = [
        "requests_total",
        "tasks_total",
        "rejects_total",
        "files_written_total",
        "passes_total",
        "reconcile_ranges_total",
    ];
    let gauges = [
        "cursor_lag_seconds",
        "unfinished_tasks",
        "given_up_tasks",
        "windows_left_behind",
        "last_success_timestamp_seconds",
        "last_reconcile_timestamp_seconds",
        "build_info",
    ];
    // `backfill_progress_ratio` has a series per running backfill, and none without one
    // (see gauges_follow_the_state_database_and_finished_backfills_drop_out).
    for name in counters {
        assert!(text.contains(&format!("# TYPE tasksync_{name} counter\n")), "{name} missing in:\n{text}");
    }
    for name in gauges {
        assert!(text.contains(&format!("# TYPE tasksync_{name} gauge\n")), "{name} missing in:\n{text}");
    }
    for name in ["request_duration_seconds", "pass_duration_seconds"] {
        assert!(text.contains(&format!("# TYPE tasksync_{name} histogram\n")), "{name} missing");
    }
    let version = format!("tasksync_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sample(&text, &version), Some(1.0));
    assert!(text.contains("tasksync_tasks_total{change=\"deleted\"} 0"), "deletions are counted:\n{text}");
}

#[test]
fn requests_windows_and_passes_are_counted_by_their_labels() {
    let m = Metrics::new();
    for (outcome, seconds) in [(RequestOutcome::Ok, 0.01), (RequestOutcome::Ok, 0.02), (RequestOutcome::Retried, 2.0)] {
        m.request(outcome);
        m.request_took(seconds);
    }
    m.window_done(&WindowCounts { new: 5, changed: 2, rejects: 1, file_written: true, ..Default::default() });
    m.window_left_behind();
    m.pass_finished(PassResult::Partial, 3.0);
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_requests_total{outcome=\"ok\"}"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_requests_total{outcome=\"retried\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_requests_total{outcome=\"failed\"}"), Some(0.0));
    assert_eq!(sample(&text, "tasksync_request_duration_seconds_count"), Some(3.0));
    assert_eq!(sample(&text, "tasksync_tasks_total{change=\"new\"}"), Some(5.0));
    assert_eq!(sample(&text, "tasksync_tasks_total{change=\"changed\"}"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_rejects_total"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_files_written_total"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_windows_total{result=\"left_behind\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_passes_total{result=\"partial\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_passes_total{result=\"ok\"}"), Some(0.0));
}

#[test]
fn gauges_follow_the_state_database_and_finished_backfills_drop_out() {
    let m = Metrics::new();
    m.refresh(Some(&report()), 2_000_000_000, Some(0));
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_cursor_lag_seconds"), Some(420.0));
    assert_eq!(sample(&text, "tasksync_unfinished_tasks"), Some(7.0));
    assert_eq!(sample(&text, "tasksync_given_up_tasks"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_windows_left_behind"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_last_success_timestamp_seconds"), Some(1_700_000_000.0));
    assert_eq!(sample(&text, "tasksync_backfill_progress_ratio{job=\"backfill:1-2\"}"), Some(0.25));
    assert!(!text.contains("backfill:3-4"), "a finished backfill is not a running one");

    let mut later = report();
    later.jobs.clear();
    m.refresh(Some(&later), 2_000_000_000, Some(0));
    let text = text::to_prometheus(&m.openmetrics());
    assert!(!text.contains("backfill:1-2"), "a job that finished since the last scrape leaves");
}

#[test]
fn before_any_cursor_the_lag_counts_from_sync_start() {
    let m = Metrics::new();
    m.refresh(None, 10_000, Some(4_000));
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_cursor_lag_seconds"), Some(6_000.0));
    assert_eq!(sample(&text, "tasksync_state_readable"), Some(1.0));
    m.state_unreadable();
    assert_eq!(sample(&text::to_prometheus(&m.openmetrics()), "tasksync_state_readable"), Some(0.0));
}
