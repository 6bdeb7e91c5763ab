use super::*;

/// The value of the sample line that starts with `series ` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn gauges() -> Gauges {
    Gauges {
        unfinished: 7,
        given_up: 2,
        left_behind: 2,
        ranges_given_up: 1,
        last_success_at: Some(1_700_000_000),
        last_reconcile_at: Some(1_700_000_100),
        backfills: vec![("backfill:1-2".into(), 0.25)],
        oldest_unfinished_age_s: Some(3_600),
        last_reconcile: Some(LastReconcile { requests: 40, budget: 90, found: [3, 2, 1] }),
    }
}

#[test]
fn what_an_operators_dashboard_reads_is_set_by_requests_and_scrapes() {
    let m = Metrics::new();
    let before = text::to_prometheus(&m.openmetrics());
    // Every retry reason and finding is there before the first one, as 0.
    assert_eq!(sample(&before, "tasksync_request_retries_total{reason=\"throttled\"}"), Some(0.0));
    assert_eq!(sample(&before, "tasksync_last_reconcile_found{change=\"deleted\"}"), Some(0.0));
    m.retried(RetryReason::Throttled);
    m.retried(RetryReason::Throttled);
    m.retried(RetryReason::Undecodable);
    m.pacing(7.5);
    m.refresh(Some(420), Some(&gauges()));
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_request_retries_total{reason=\"throttled\"}"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_request_retries_total{reason=\"undecodable\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_request_retries_total{reason=\"transient\"}"), Some(0.0));
    assert_eq!(sample(&text, "tasksync_pacing_requests_per_second"), Some(7.5));
    assert_eq!(sample(&text, "tasksync_oldest_unfinished_age_seconds"), Some(3600.0));
    assert_eq!(sample(&text, "tasksync_last_reconcile_requests"), Some(40.0));
    assert_eq!(sample(&text, "tasksync_last_reconcile_budget"), Some(90.0));
    assert_eq!(sample(&text, "tasksync_last_reconcile_found{change=\"new\"}"), Some(3.0));
    let rss = sample(&text, "process_resident_memory_bytes").unwrap();
    assert!(rss > 1e6, "a scrape reads the process's resident memory: {rss}");
}

#[test]
fn every_family_the_contract_names_is_exposed_with_help_and_type() {
    let text = text::to_prometheus(&Metrics::new().openmetrics());
    let counters = [
        "requests_total",
        "tasks_total",
        "rejects_total",
        "files_written_total",
        "history_versions_total",
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
    let version = format!(
        "tasksync_build_info{{version=\"{}\",commit=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        env!("TASKSYNC_COMMIT")
    );
    assert_eq!(sample(&text, &version), Some(1.0));
    assert!(text.contains("tasksync_tasks_total{change=\"deleted\"} 0"), "deletions are counted:\n{text}");
}

#[test]
fn requests_windows_and_passes_are_counted_by_their_labels() {
    let m = Metrics::new();
    for (outcome, seconds) in [(RequestResult::Ok, 0.01), (RequestResult::Ok, 0.02), (RequestResult::Retried, 2.0)] {
        m.request_ended(outcome, seconds);
    }
    m.window_done(&WindowCounts {
        new: 5,
        changed: 2,
        rejects: 1,
        files_written: 1,
        versions: 7,
        ..Default::default()
    });
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
    assert_eq!(sample(&text, "tasksync_history_versions_total"), Some(7.0));
    assert_eq!(sample(&text, "tasksync_windows_total{result=\"left_behind\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_passes_total{result=\"partial\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_passes_total{result=\"ok\"}"), Some(0.0));
}

#[test]
fn gauges_follow_each_scrape_and_a_backfill_gone_since_drops_out() {
    let m = Metrics::new();
    m.refresh(Some(420), Some(&gauges()));
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_cursor_lag_seconds"), Some(420.0));
    assert_eq!(sample(&text, "tasksync_unfinished_tasks"), Some(7.0));
    assert_eq!(sample(&text, "tasksync_given_up_tasks"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_windows_left_behind"), Some(2.0));
    assert_eq!(sample(&text, "tasksync_last_success_timestamp_seconds"), Some(1_700_000_000.0));
    assert_eq!(sample(&text, "tasksync_backfill_progress_ratio{job=\"backfill:1-2\"}"), Some(0.25));
    assert_eq!(sample(&text, "tasksync_ranges_given_up"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_last_reconcile_timestamp_seconds"), Some(1_700_000_100.0));

    let later = Gauges { backfills: vec![], ..gauges() };
    m.refresh(Some(420), Some(&later));
    let text = text::to_prometheus(&m.openmetrics());
    assert!(!text.contains("backfill:1-2"), "a job that finished since the last scrape leaves");
}

#[test]
fn without_a_state_database_only_the_lag_is_set_and_unreadable_state_shows() {
    let m = Metrics::new();
    m.refresh(Some(6_000), None);
    let text = text::to_prometheus(&m.openmetrics());
    assert_eq!(sample(&text, "tasksync_cursor_lag_seconds"), Some(6_000.0));
    assert_eq!(sample(&text, "tasksync_state_readable"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_unfinished_tasks"), Some(0.0));
    m.state_unreadable();
    assert_eq!(sample(&text::to_prometheus(&m.openmetrics()), "tasksync_state_readable"), Some(0.0));
}
