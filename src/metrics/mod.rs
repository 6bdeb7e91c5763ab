//! Prometheus metrics: the families of docs/contract.md, counted as the pipeline works and
//! refreshed from the state database at each scrape; served by [`serve`] at `GET /metrics`
//! in the format the scraper asks for ([`text`]); what it is told comes in its own words
//! (`vocabulary`).
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
mod vocabulary;

pub use vocabulary::{Gauges, LastReconcile, PassResult, ReconcileCounts, RequestResult, RetryReason};

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
    /// `tasksync_request_retries_total{reason}`: requests asked again, by why.
    retries: Family<Label, Counter>,
    /// `tasksync_pacing_requests_per_second`: the rate requests leave at, lowered below
    /// `api.requests_per_second` while the API answers bursts of 429.
    pacing: FloatGauge,
    /// `process_resident_memory_bytes`, read at each scrape.
    resident_memory: Gauge,
    /// `tasksync_oldest_unfinished_age_seconds`: how long the oldest re-checked task has
    /// existed (0 with none).
    oldest_unfinished_age: FloatGauge,
    /// `tasksync_last_reconcile_requests` and `_budget`: what the last reconciliation spent.
    last_reconcile_spent: [Gauge; 2],
    /// `tasksync_last_reconcile_found{change}` (new, changed, deleted).
    last_reconcile_found: Family<Label, Gauge>,
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
            retries: Family::default(),
            pacing: FloatGauge::default(),
            resident_memory: Gauge::default(),
            oldest_unfinished_age: FloatGauge::default(),
            last_reconcile_spent: Default::default(),
            last_reconcile_found: Family::default(),
            registry: r,
        };
        m.register_gauges().register_operations()
    }

    /// The families an operator's dashboard adds to the contract's: retries by reason, the
    /// pacing rate, the process's memory, the oldest unfinished task, the last
    /// reconciliation's spending and findings.
    fn register_operations(mut self) -> Metrics {
        let r = &mut self.registry;
        for reason in RetryReason::ALL {
            let _ = self.retries.get_or_create(&[("reason", reason.label().into())]);
        }
        r.register("tasksync_request_retries", "Requests asked again, by why", self.retries.clone());
        r.register(
            "tasksync_pacing_requests_per_second",
            "The rate requests leave at: api.requests_per_second, or lower while the API answers 429",
            self.pacing.clone(),
        );
        r.register("process_resident_memory_bytes", "Resident memory of the process", self.resident_memory.clone());
        r.register(
            "tasksync_oldest_unfinished_age_seconds",
            "Seconds since the oldest task still re-checked was created",
            self.oldest_unfinished_age.clone(),
        );
        let [requests, budget] = &self.last_reconcile_spent;
        r.register("tasksync_last_reconcile_requests", "Requests the last reconciliation made", requests.clone());
        r.register("tasksync_last_reconcile_budget", "The last reconciliation's request budget", budget.clone());
        for change in ["new", "changed", "deleted"] {
            let _ = self.last_reconcile_found.get_or_create(&[("change", change.into())]);
        }
        r.register(
            "tasksync_last_reconcile_found",
            "Tasks the last reconciliation found new, changed or deleted",
            self.last_reconcile_found.clone(),
        );
        self
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

    /// Counts a request asked again, and why.
    pub fn retried(&self, reason: RetryReason) {
        self.retries.get_or_create(&[("reason", reason.label().into())]).inc();
    }

    /// The rate requests leave at now.
    pub fn pacing(&self, requests_per_second: f64) {
        self.pacing.set(requests_per_second);
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
        self.read_resident_memory();
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
        self.oldest_unfinished_age.set(g.oldest_unfinished_age_s.unwrap_or(0).max(0) as f64);
        if let Some(l) = g.last_reconcile {
            self.last_reconcile_spent[0].set(l.requests as i64);
            self.last_reconcile_spent[1].set(l.budget as i64);
            for (change, n) in ["new", "changed", "deleted"].into_iter().zip(l.found) {
                self.last_reconcile_found.get_or_create(&[("change", change.into())]).set(n as i64);
            }
        }
    }

    /// The process's resident memory, from `/proc/self/statm` (0 where there is none).
    fn read_resident_memory(&self) {
        let pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()));
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        self.resident_memory.set(pages.unwrap_or(0) * page.max(0) as i64);
    }

    /// Marks the state database unreadable at the last scrape; the gauges keep their values.
    pub fn state_unreadable(&self) {
        self.read_resident_memory();
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
