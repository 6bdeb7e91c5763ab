//! The run summary: what a pass did, counted as it goes, printed and stored at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::source::ApiStats;

/// Counters shared by every window of one pass.
#[derive(Debug)]
pub struct Summary {
    /// Request-level counters, updated by the client for the whole process.
    api: Arc<ApiStats>,
    /// The client's counters when the pass began: the pass's figures are the difference.
    api_base: [u64; 4],
    /// Windows committed.
    windows: AtomicU64,
    /// Leaves the windows were walked in.
    leaves: AtomicU64,
    /// Leaves that unstable paging made page again.
    repaged: AtomicU64,
    /// Ranges split because their `total` kept growing while paged.
    unsettled: AtomicU64,
    /// Tasks received (one per task_id and leaf).
    tasks: AtomicU64,
    /// Tasks not stored before.
    new: AtomicU64,
    /// Stored tasks whose content changed.
    changed: AtomicU64,
    /// Partition files rewritten.
    files_written: AtomicU64,
    /// Records kept in the rejects file.
    rejects: AtomicU64,
    /// Stored tasks marked deleted upstream (a complete listing no longer had them).
    deleted: AtomicU64,
    /// Stored tasks listed again under another create_time of their day.
    moved: AtomicU64,
    /// Versions opened in `task_history/`.
    versions: AtomicU64,
    /// The reconciliation the pass ran, if one was due.
    reconciled: std::sync::Mutex<Option<crate::state::Reconciled>>,
    /// Windows walked again because another writer replaced their partition's object.
    conflicts: AtomicU64,
    /// The ranges left for the next pass, each with its reason.
    left_behind: std::sync::Mutex<Vec<String>>,
    /// When the run started, for the `seconds` figure.
    started: std::time::Instant,
}

/// What one committed window did: one shape for the summary, the metrics and the progress.
pub use crate::metrics::WindowCounts;

/// One range left for the next pass, as the pass summary names it.
pub fn left_behind_label(window: crate::plan::Window, reason: &str) -> String {
    format!("{window} ({reason})")
}

/// A snapshot of [`Summary`], as printed and stored in the `runs` table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    /// Windows committed.
    pub windows: u64,
    /// Leaves the windows were walked in.
    pub leaves: u64,
    /// Leaves that unstable paging made page again.
    pub repaged: u64,
    /// Ranges split because their `total` kept growing while paged.
    pub unsettled: u64,
    /// Pages decoded during the pass.
    pub pages: u64,
    /// HTTP requests sent during the pass, retries included.
    pub requests: u64,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// Tasks received (one per task_id and leaf).
    pub tasks: u64,
    /// Tasks not stored before.
    pub new: u64,
    /// Stored tasks whose content changed.
    pub changed: u64,
    /// Partition files rewritten.
    pub files_written: u64,
    /// Records kept in the rejects file (each once, however often it is re-listed).
    pub rejects: u64,
    /// Stored tasks marked deleted upstream.
    pub deleted: u64,
    /// Stored tasks whose create_time the API corrected within their day.
    pub moved: u64,
    /// Versions opened in `task_history/`.
    pub versions: u64,
    /// Windows walked again because another writer replaced their partition's object.
    pub conflicts: u64,
    /// Fields stored as null because their value had an unusable type.
    pub nulled_fields: u64,
    /// The ranges left for the next pass, each with its reason (see `status`).
    pub left_behind: Vec<String>,
    /// How long the pass took, in seconds (to the millisecond).
    pub seconds: f64,
    /// The reconciliation this pass ran, if one was due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconciled: Option<crate::state::Reconciled>,
}

impl Summary {
    pub fn new(api: Arc<ApiStats>) -> Summary {
        let z = || AtomicU64::new(0);
        let api_base = api_counters(&api);
        Summary {
            api,
            api_base,
            windows: z(),
            leaves: z(),
            repaged: z(),
            unsettled: z(),
            tasks: z(),
            new: z(),
            changed: z(),
            files_written: z(),
            rejects: z(),
            deleted: z(),
            moved: z(),
            versions: z(),
            reconciled: std::sync::Mutex::new(None),
            conflicts: z(),
            left_behind: std::sync::Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        }
    }

    /// Adds one committed window's figures.
    pub fn window_done(&self, c: &WindowCounts) {
        self.windows.fetch_add(1, Relaxed);
        self.leaves.fetch_add(c.leaves, Relaxed);
        self.repaged.fetch_add(c.repaged, Relaxed);
        self.unsettled.fetch_add(c.unsettled, Relaxed);
        self.tasks.fetch_add(c.tasks, Relaxed);
        self.new.fetch_add(c.new, Relaxed);
        self.changed.fetch_add(c.changed, Relaxed);
        self.files_written.fetch_add(u64::from(c.file_written), Relaxed);
        self.rejects.fetch_add(c.rejects, Relaxed);
        self.deleted.fetch_add(c.deleted, Relaxed);
        self.moved.fetch_add(c.moved, Relaxed);
        self.versions.fetch_add(c.versions, Relaxed);
    }

    /// Records the reconciliation the pass ran.
    pub fn reconciled(&self, r: crate::state::Reconciled) {
        *self.reconciled.lock().expect("never poisoned") = Some(r);
    }

    /// Counts a window walked again after a conflicting write.
    pub fn conflict(&self) {
        self.conflicts.fetch_add(1, Relaxed);
    }

    /// Records a range left for the next pass.
    pub fn left_behind(&self, window: crate::plan::Window, reason: &str) {
        self.left_behind.lock().expect("never poisoned").push(left_behind_label(window, reason));
    }

    pub fn totals(&self) -> Totals {
        let api = api_counters(&self.api);
        let [pages, requests, retries, nulled_fields] = std::array::from_fn(|i| api[i] - self.api_base[i]);
        Totals {
            windows: self.windows.load(Relaxed),
            leaves: self.leaves.load(Relaxed),
            repaged: self.repaged.load(Relaxed),
            unsettled: self.unsettled.load(Relaxed),
            pages,
            requests,
            retries,
            tasks: self.tasks.load(Relaxed),
            new: self.new.load(Relaxed),
            changed: self.changed.load(Relaxed),
            files_written: self.files_written.load(Relaxed),
            rejects: self.rejects.load(Relaxed),
            deleted: self.deleted.load(Relaxed),
            moved: self.moved.load(Relaxed),
            versions: self.versions.load(Relaxed),
            conflicts: self.conflicts.load(Relaxed),
            nulled_fields,
            left_behind: self.left_behind.lock().expect("never poisoned").clone(),
            seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            reconciled: self.reconciled.lock().expect("never poisoned").clone(),
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
            self.tasks,
            self.new,
            self.changed,
            self.deleted,
            self.moved,
            self.files_written,
            self.versions,
            self.rejects,
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
