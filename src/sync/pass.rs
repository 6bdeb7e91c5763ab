//! One pass over a set of windows: what it works with, its stop signal, and the one place
//! its events are counted (the summary, the metrics and the progress bar).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::context::Context;
use super::summary::Summary;
use crate::commit::WindowCounts;
use crate::metrics::ReconcileCounts;
use crate::plan::LeftBehind;
use crate::state::Reconciled;

/// What happened in a pass, as [`Pass::record`] hears it.
#[derive(Debug)]
pub enum PassEvent<'e> {
    /// A window was committed with these figures.
    Committed(&'e WindowCounts),
    /// A whole window failed and was left for the next pass (after its checkpoint
    /// recorded it).
    WindowFailed(&'e LeftBehind),
    /// A part of a committed window was left for the next pass.
    LeftBehind(&'e LeftBehind),
    /// A window is walked again because another writer replaced its partition's object.
    Conflict,
    /// The pass's reconciliation ended (already recorded in the state database).
    Reconciled(&'e Reconciled),
}

/// One pass over a set of windows: its counters and its stop signal.
pub struct Pass<'a> {
    /// What the pass works with.
    pub ctx: &'a Context,
    /// This pass's counters.
    pub summary: Summary,
    /// Set when the daemon's shutdown future completes: start no new window; in-flight ones
    /// finish.
    pub stop: Arc<AtomicBool>,
    /// The bar or progress lines of a long pass (begun by the pass once it has a plan).
    pub progress: crate::progress::Progress,
}

impl<'a> Pass<'a> {
    pub fn new(ctx: &'a Context, stop: Arc<AtomicBool>) -> Pass<'a> {
        let progress = crate::progress::Progress::new(crate::progress::Mode::detect(), ctx.client.stats.clone());
        Pass { ctx, summary: Summary::new(ctx.client.stats.clone()), stop, progress }
    }

    /// Counts one event everywhere it is counted: the summary, the metrics and the
    /// progress bar.
    pub fn record(&self, event: PassEvent<'_>) {
        match event {
            PassEvent::Committed(counts) => {
                self.summary.window_done(counts);
                self.ctx.metrics.window_done(counts);
                self.progress.window_done(counts.tasks);
            }
            PassEvent::WindowFailed(left) => {
                self.summary.left_behind(left);
                self.ctx.metrics.window_left_behind();
                self.progress.window_done(0);
            }
            PassEvent::LeftBehind(left) => {
                self.summary.left_behind(left);
                self.ctx.metrics.window_left_behind();
            }
            PassEvent::Conflict => self.summary.conflict(),
            PassEvent::Reconciled(r) => {
                self.summary.reconciled(r.clone());
                self.ctx.metrics.reconciled(&ReconcileCounts {
                    matched: r.matched,
                    differing: r.differing,
                    failed: r.failed,
                    finished_at: r.finished_at,
                });
            }
        }
    }
}
