//! The run summary: what a pass did, counted as it goes, printed and stored at the end.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use crate::commit::WindowCounts;
use crate::plan::LeftBehind;
use crate::source::ApiStats;

/// Counters shared by every window of one pass.
#[derive(Debug)]
pub struct Summary {
    /// Request-level counters, updated by the client for the whole process.
    api: Arc<ApiStats>,
    /// The client's counters when the pass began: the pass's figures are the difference.
    api_base: [u64; 4],
    /// What the pass counts beside the requests, added to as windows end.
    counted: Mutex<Counted>,
    /// When the run started, for the `seconds` figure.
    started: std::time::Instant,
}

/// The part of [`Totals`] that windows add to.
#[derive(Debug, Default)]
struct Counted {
    /// Windows committed.
    windows: u64,
    /// The committed windows' figures, summed.
    counts: WindowCounts,
    /// Windows walked again because another writer replaced their partition's object.
    conflicts: u64,
    /// The ranges left for the next pass.
    left_behind: Vec<LeftBehind>,
    /// The reconciliation the pass ran, if one was due.
    reconciled: Option<crate::state::Reconciled>,
}

/// A snapshot of [`Summary`], as printed and stored in the `runs` table (as JSON, the
/// window figures flattened in beside the pass's own).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    /// Windows committed.
    pub windows: u64,
    /// The committed windows' figures, summed: tasks, new, changed, files written, ...
    #[serde(flatten)]
    pub counts: WindowCounts,
    /// Pages decoded during the pass.
    pub pages: u64,
    /// HTTP requests sent during the pass, retries included.
    pub requests: u64,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// Windows walked again because another writer replaced their partition's object.
    pub conflicts: u64,
    /// Fields stored as null because their value had an unusable type.
    pub nulled_fields: u64,
    /// The ranges left for the next pass, each with its reason (see `status`).
    pub left_behind: Vec<LeftBehind>,
    /// How long the pass took, in seconds (to the millisecond).
    pub seconds: f64,
    /// The reconciliation this pass ran, if one was due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<crate::state::Reconciled>,
}

impl Summary {
    pub fn new(api: Arc<ApiStats>) -> Summary {
        let api_base = api_counters(&api);
        Summary { api, api_base, counted: Mutex::default(), started: std::time::Instant::now() }
    }

    /// Adds one committed window's figures.
    pub fn window_done(&self, c: &WindowCounts) {
        let mut counted = self.counted.lock().expect("never poisoned");
        counted.windows += 1;
        counted.counts.add(c);
    }

    /// Records the reconciliation the pass ran.
    pub fn reconciled(&self, r: crate::state::Reconciled) {
        self.counted.lock().expect("never poisoned").reconciled = Some(r);
    }

    /// Counts a window walked again after a conflicting write.
    pub fn conflict(&self) {
        self.counted.lock().expect("never poisoned").conflicts += 1;
    }

    /// Records a range left for the next pass.
    pub fn left_behind(&self, left: &LeftBehind) {
        self.counted.lock().expect("never poisoned").left_behind.push(left.clone());
    }

    pub fn totals(&self) -> Totals {
        let api = api_counters(&self.api);
        let [pages, requests, retries, nulled_fields] = std::array::from_fn(|i| api[i] - self.api_base[i]);
        let counted = self.counted.lock().expect("never poisoned");
        Totals {
            windows: counted.windows,
            counts: counted.counts.clone(),
            pages,
            requests,
            retries,
            conflicts: counted.conflicts,
            nulled_fields,
            left_behind: counted.left_behind.clone(),
            seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            reconciled: counted.reconciled.clone(),
        }
    }
}

fn api_counters(api: &ApiStats) -> [u64; 4] {
    [api.pages.load(Relaxed), api.requests.load(Relaxed), api.retries.load(Relaxed), api.nulled_fields.load(Relaxed)]
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "windows={} pages={} requests={} retries={} tasks={} new={} changed={} deleted={} moved={} files_written={} history_versions={} rejects={} left_behind={} seconds={:.1}",
            self.windows,
            self.pages,
            self.requests,
            self.retries,
            self.counts.tasks,
            self.counts.new,
            self.counts.changed,
            self.counts.deleted,
            self.counts.moved,
            self.counts.files_written,
            self.counts.versions,
            self.counts.rejects,
            self.left_behind.len(),
            self.seconds
        )?;
        if let Some(r) = &self.reconciled {
            write!(
                f,
                " reconciled_days={} matched={} differing_ranges={} reconcile_requests={} reconcile_budget={}",
                r.days, r.matched, r.differing, r.requests, r.budget
            )?;
        }
        Ok(())
    }
}
