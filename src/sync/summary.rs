//! The run summary: what a pass did, counted as it goes, printed and stored at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::api::ApiStats;

/// Counters shared by every window of a run.
#[derive(Debug)]
pub struct Summary {
    /// Request-level counters, updated by the client.
    pub api: Arc<ApiStats>,
    windows: AtomicU64,
    leaves: AtomicU64,
    repaged: AtomicU64,
    tasks: AtomicU64,
    new: AtomicU64,
    changed: AtomicU64,
    files_written: AtomicU64,
    rejects: AtomicU64,
    /// When the run started, for the `seconds` figure.
    started: std::time::Instant,
}

/// A snapshot of [`Summary`], as printed and stored in the `runs` table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Totals {
    pub windows: u64,
    pub leaves: u64,
    pub repaged: u64,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub tasks: u64,
    pub new: u64,
    pub changed: u64,
    pub files_written: u64,
    pub rejects: u64,
    pub nulled_fields: u64,
    pub seconds: f64,
}

impl Summary {
    pub fn new(api: Arc<ApiStats>) -> Summary {
        let z = || AtomicU64::new(0);
        Summary { api, windows: z(), leaves: z(), repaged: z(), tasks: z(), new: z(), changed: z(), files_written: z(), rejects: z(), started: std::time::Instant::now() }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn window_done(&self, leaves: u64, repaged: u64, tasks: u64, new: u64, changed: u64, written: bool, rejects: u64) {
        self.windows.fetch_add(1, Relaxed);
        self.leaves.fetch_add(leaves, Relaxed);
        self.repaged.fetch_add(repaged, Relaxed);
        self.tasks.fetch_add(tasks, Relaxed);
        self.new.fetch_add(new, Relaxed);
        self.changed.fetch_add(changed, Relaxed);
        self.files_written.fetch_add(u64::from(written), Relaxed);
        self.rejects.fetch_add(rejects, Relaxed);
    }

    pub fn totals(&self) -> Totals {
        Totals {
            windows: self.windows.load(Relaxed),
            leaves: self.leaves.load(Relaxed),
            repaged: self.repaged.load(Relaxed),
            pages: self.api.pages.load(Relaxed),
            requests: self.api.requests.load(Relaxed),
            retries: self.api.retries.load(Relaxed),
            tasks: self.tasks.load(Relaxed),
            new: self.new.load(Relaxed),
            changed: self.changed.load(Relaxed),
            files_written: self.files_written.load(Relaxed),
            rejects: self.rejects.load(Relaxed),
            nulled_fields: self.api.nulled_fields.load(Relaxed),
            seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "windows={} pages={} requests={} retries={} tasks={} new={} changed={} files_written={} rejects={} seconds={:.1}",
            self.windows, self.pages, self.requests, self.retries, self.tasks, self.new, self.changed, self.files_written, self.rejects, self.seconds
        )
    }
}
