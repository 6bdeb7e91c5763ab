//! Prometheus metrics: the families of docs/contract.md, counted as the pipeline works and
//! refreshed from the state database at each scrape; served by [`serve`] at `GET /metrics`
//! in the format the scraper asks for ([`text`]).
//!
//! It imports nothing of the pipeline but the one shape of a window's figures
//! ([`WindowCounts`], which the commit owns); the rest it counts comes in its own vocabulary
//! ([`Gauges`], [`RequestResult`], [`PassResult`]), handed over by `sync/observe.rs`,
//! which knows both sides.
//!
//! Counters and histograms are updated where things happen (the client, a window's commit,
//! a pass's end). Gauges that describe the data set (cursor lag, unfinished tasks, ranges
//! left behind, backfill progress) are read from the state database when scraped, so they
//! also show what other processes did: a backfill running beside the service appears in
//! the service's own scrape.

pub mod serve;
pub mod text;

use crate::commit::WindowCounts;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One label and its value: every labelled family here has exactly one label.
type Label = [(&'static str, String); 1];

/// A gauge holding seconds or a ratio.
type FloatGauge = Gauge<f64, AtomicU64>;

/// How one HTTP request to the API ended, for `tasksync_requests_total{outcome}`.
#[derive(Debug, Clone, Copy)]
pub enum RequestResult {
    /// A page was decoded (or the clock probe answered).
    Ok,
    /// It failed transiently and the page is asked again.
    Retried,
    /// It failed and the page is given up (permanent, or the retry budget spent).
    Failed,
}

/// How a pass ended, for `tasksync_passes_total{result}`.
#[derive(Debug, Clone, Copy)]
pub enum PassResult {
    /// Every window committed.
    Ok,
    /// Some windows left for the next pass.
    Partial,
    /// The pass stopped (credentials, API unreachable, disk, state database).
    Failed,
}

/// What a reconciliation compared, for `tasksync_reconcile_ranges_total{result}`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReconcileCounts {
    /// Days whose counts matched the API's.
    pub matched: u64,
    /// Ranges whose counts differed (re-listed).
    pub differing: u64,
    /// Ranges that could not be re-listed.
    pub failed: u64,
    /// When it ended (unix seconds).
    pub finished_at: i64,
}

/// The gauges that describe the data set, read from the state database at each scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// Tasks still re-checked.
    pub unfinished: i64,
    /// Tasks past `sync.reopen_max_age`, no longer re-checked.
    pub given_up: i64,
    /// Ranges waiting for the next pass (not given up).
    pub left_behind: i64,
    /// Ranges given up.
    pub ranges_given_up: i64,
    /// When the last pass that did not fail ended.
    pub last_success_at: Option<i64>,
    /// When the last reconciliation ended.
    pub last_reconcile_at: Option<i64>,
    /// Each unfinished backfill job and the share of its range done (0 to 1).
    pub backfills: Vec<(String, f64)>,
}

/// The process's metrics. Cheap to update from any task (atomic counters); shared behind
/// an `Arc` by the client, the windows and the server.
pub struct Metrics {
    /// Every family below, for encoding.
    registry: Registry,
    /// `tasksync_requests_total{outcome}`, pre-created per outcome (ok, retried, failed).
    requests: [Counter; 3],
    /// `tasksync_request_duration_seconds`: one observation per HTTP request.
    request_duration: Histogram,
    /// `tasksync_tasks_total{change="new"}`.
    tasks_new: Counter,
    /// `tasksync_tasks_total{change="changed"}`.
    tasks_changed: Counter,
    /// `tasksync_tasks_total{change="deleted"}`: rows marked deleted upstream.
    tasks_deleted: Counter,
    /// `tasksync_reconcile_ranges_total{result}`: days matched, ranges differing, ranges
    /// that could not be re-listed.
    reconcile_ranges: [Counter; 3],
    /// `tasksync_last_reconcile_timestamp_seconds`: when the last reconciliation ended.
    last_reconcile: FloatGauge,
    /// `tasksync_ranges_given_up`: ranges left behind longer than `sync.give_up_after`.
    ranges_given_up: Gauge,
    /// `tasksync_rejects_total`: records kept in `_rejects/` instead of the table.
    rejects: Counter,
    /// `tasksync_history_versions_total`: versions opened in `task_history/`.
    history_versions: Counter,
    /// `tasksync_files_written_total`: partition files replaced.
    files_written: Counter,
    /// `tasksync_windows_total{result}` (committed, left_behind): an extra family, so that
    /// a rate of windows left behind can be alerted on between passes.
    windows: Family<Label, Counter>,
    /// `tasksync_passes_total{result}`, pre-created per result (ok, partial, failed).
    passes: [Counter; 3],
    /// `tasksync_pass_duration_seconds`.
    pass_duration: Histogram,
    /// `tasksync_cursor_lag_seconds`: now minus the cursor (minus `sync.start` before one).
    cursor_lag: FloatGauge,
    /// `tasksync_unfinished_tasks`: tasks still re-checked.
    unfinished: Gauge,
    /// `tasksync_given_up_tasks`: tasks past `sync.reopen_max_age`, no longer re-checked.
    given_up: Gauge,
    /// `tasksync_windows_left_behind`: ranges waiting for the next pass.
    left_behind: Gauge,
    /// `tasksync_last_success_timestamp_seconds`: end of the last pass that did not fail.
    last_success: FloatGauge,
    /// `tasksync_backfill_progress_ratio{job}`, for backfills not finished.
    backfill_progress: Family<Label, FloatGauge>,
    /// `tasksync_state_readable`: 0 when the last scrape could not read the state database.
    state_readable: Gauge,
    /// `process_start_time_seconds`: what "no success for N periods" counts from when no
    /// pass has succeeded yet.
    start_time: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let requests = Family::<Label, Counter>::default();
        r.register("tasksync_requests", "HTTP requests to list_task by outcome", requests.clone());
        let request_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        r.register("tasksync_request_duration_seconds", "Time of one list_task request", request_duration.clone());
        let tasks = Family::<Label, Counter>::default();
        r.register("tasksync_tasks", "Tasks stored that were new or had changed", tasks.clone());
        let rejects = Counter::default();
        r.register("tasksync_rejects", "Records kept in _rejects instead of the table", rejects.clone());
        let files_written = Counter::default();
        r.register("tasksync_files_written", "Partition files replaced", files_written.clone());
        let history_versions = Counter::default();
        r.register("tasksync_history_versions", "Versions opened in task_history", history_versions.clone());
        let windows = Family::<Label, Counter>::default();
        r.register("tasksync_windows", "Windows committed or left for the next pass", windows.clone());
        let passes = Family::<Label, Counter>::default();
        r.register("tasksync_passes", "Passes by result", passes.clone());
        let pass_duration = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        r.register("tasksync_pass_duration_seconds", "Time of one pass", pass_duration.clone());
        let m = Metrics {
            requests: ["ok", "retried", "failed"].map(|o| requests.get_or_create_owned(&[("outcome", o.into())])),
            request_duration,
            tasks_new: tasks.get_or_create_owned(&[("change", "new".into())]),
            tasks_changed: tasks.get_or_create_owned(&[("change", "changed".into())]),
            tasks_deleted: tasks.get_or_create_owned(&[("change", "deleted".into())]),
            reconcile_ranges: {
                let f = Family::<Label, Counter>::default();
                r.register(
                    "tasksync_reconcile_ranges",
                    "Days and ranges a reconciliation compared, by result",
                    f.clone(),
                );
                ["matched", "differing", "failed"].map(|o| f.get_or_create_owned(&[("result", o.into())]))
            },
            last_reconcile: FloatGauge::default(),
            ranges_given_up: Gauge::default(),
            rejects,
            history_versions,
            files_written,
            passes: ["ok", "partial", "failed"].map(|o| passes.get_or_create_owned(&[("result", o.into())])),
            windows,
            pass_duration,
            cursor_lag: FloatGauge::default(),
            unfinished: Gauge::default(),
            given_up: Gauge::default(),
            left_behind: Gauge::default(),
            last_success: FloatGauge::default(),
            backfill_progress: Family::default(),
            state_readable: Gauge::default(),
            start_time: Gauge::default(),
            registry: r,
        };
        m.register_gauges()
    }

    fn register_gauges(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "tasksync_cursor_lag_seconds",
            "Seconds between now and the incremental cursor",
            self.cursor_lag.clone(),
        );
        r.register(
            "tasksync_unfinished_tasks",
            "Tasks last seen unfinished, still re-checked",
            self.unfinished.clone(),
        );
        r.register(
            "tasksync_given_up_tasks",
            "Unfinished tasks no longer re-checked (past reopen_max_age)",
            self.given_up.clone(),
        );
        r.register("tasksync_windows_left_behind", "Ranges left for the next pass", self.left_behind.clone());
        r.register(
            "tasksync_last_success_timestamp_seconds",
            "Unix time at which the last pass that did not fail ended",
            self.last_success.clone(),
        );
        r.register(
            "tasksync_backfill_progress_ratio",
            "Share of a backfill's range done",
            self.backfill_progress.clone(),
        );
        r.register(
            "tasksync_state_readable",
            "Whether the last scrape could read the state database",
            self.state_readable.clone(),
        );
        r.register(
            "tasksync_ranges_given_up",
            "Ranges left behind longer than sync.give_up_after: no longer retried, still re-counted",
            self.ranges_given_up.clone(),
        );
        r.register(
            "tasksync_last_reconcile_timestamp_seconds",
            "Unix time at which the last reconciliation with the API's totals ended",
            self.last_reconcile.clone(),
        );
        r.register("process_start_time_seconds", "Unix time at which the process started", self.start_time.clone());
        let build = Family::<[(&'static str, String); 2], Gauge>::default();
        build
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION").into()), ("commit", env!("TASKSYNC_COMMIT").into())])
            .set(1);
        r.register("tasksync_build_info", "The running version and the git commit it was built from", build);
        self
    }

    /// Records the process's start, in unix seconds.
    pub fn started(&self, now: i64) {
        self.start_time.set(now);
    }

    /// Counts how one HTTP request ended and its time, from sending it to its body read.
    pub fn request_ended(&self, outcome: RequestResult, seconds: f64) {
        self.requests[outcome as usize].inc();
        self.request_duration.observe(seconds);
    }

    /// Counts one committed window.
    pub fn window_done(&self, c: &WindowCounts) {
        self.tasks_new.inc_by(c.new);
        self.tasks_changed.inc_by(c.changed);
        self.tasks_deleted.inc_by(c.deleted);
        self.rejects.inc_by(c.rejects);
        self.files_written.inc_by(c.files_written);
        self.history_versions.inc_by(c.versions);
        self.windows.get_or_create(&[("result", "committed".into())]).inc();
    }

    /// Counts what one reconciliation compared.
    pub fn reconciled(&self, r: &ReconcileCounts) {
        self.reconcile_ranges[0].inc_by(r.matched);
        self.reconcile_ranges[1].inc_by(r.differing);
        self.reconcile_ranges[2].inc_by(r.failed);
        self.last_reconcile.set(r.finished_at as f64);
    }

    /// Counts one window left for the next pass.
    pub fn window_left_behind(&self) {
        self.windows.get_or_create(&[("result", "left_behind".into())]).inc();
    }

    /// Counts one finished pass and its time.
    pub fn pass_finished(&self, result: PassResult, seconds: f64) {
        self.passes[result as usize].inc();
        self.pass_duration.observe(seconds);
    }

    /// Sets the gauges read at a scrape: `lag_s` always (before there is a cursor, it counts
    /// from `sync.start`), the rest when there is a state database.
    pub fn refresh(&self, lag_s: Option<i64>, gauges: Option<&Gauges>) {
        self.state_readable.set(1);
        self.cursor_lag.set(lag_s.unwrap_or(0).max(0) as f64);
        let Some(g) = gauges else { return };
        self.unfinished.set(g.unfinished);
        self.given_up.set(g.given_up);
        self.left_behind.set(g.left_behind);
        self.ranges_given_up.set(g.ranges_given_up);
        self.last_success.set(g.last_success_at.unwrap_or(0) as f64);
        if let Some(at) = g.last_reconcile_at {
            self.last_reconcile.set(at as f64);
        }
        self.backfill_progress.clear();
        for (job, ratio) in &g.backfills {
            self.backfill_progress.get_or_create(&[("job", job.clone())]).set(*ratio);
        }
    }

    /// Marks the state database unreadable at the last scrape; the gauges keep their values.
    pub fn state_unreadable(&self) {
        self.state_readable.set(0);
    }

    /// The metrics in the OpenMetrics text format (what `prometheus-client` writes).
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
