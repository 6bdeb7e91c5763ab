//! One sync pass: plan windows -> walk them leaf by leaf -> stream each leaf through the
//! merge into its partition's staged file -> replace files -> checkpoint. The order per
//! window is always data durable first, checkpoint second ([`commit`]).
//!
//! Rooms: [`context`] (what a pass needs, opened once), [`backfill`] and [`incremental`]
//! (the two kinds of pass and their plans), [`window`] (walking a window into its
//! partition), [`walker`] (one window leaf by leaf, in time order), `paging` (one range's
//! pages), [`commit`] (the commit point), [`reconcile`] (the recent past re-counted against
//! the API's totals), [`summary`] (a pass's counters).

pub mod backfill;
pub mod commit;
pub mod context;
pub mod incremental;
mod paging;
pub mod reconcile;
pub mod summary;
pub mod walker;
pub mod window;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use backfill::backfill_job_id;
pub use context::Context;

use crate::config::Config;
use crate::metrics::PassResult;
use crate::plan::Window;
use crate::sink::SinkError;
use crate::state::StateError;
use crate::time::Clock;
use summary::{Summary, Totals};
use walker::WalkError;

/// Why a pass stopped. Every message names the window, file or database involved.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::serve::MetricsError),
    /// The config contradicts a setting the state database recorded at first use.
    #[error(
        "`{key}` is {configured} in the config, but the state database {state} recorded {pinned} at first use: \
         tasks' create times and partitions would change under it. If the new value is right, re-sync deliberately: \
         move the state database and output_dir aside and backfill again (README: \"Changing api.local_time_zone\")"
    )]
    Pinned { key: &'static str, configured: String, pinned: String, state: std::path::PathBuf },
}

impl SyncError {
    /// Whether this failure belongs to one window, which is then left for the next pass
    /// while the others go on: a range that does not settle or holds more than paging
    /// reaches, records outside their window, the API's permanent error for that range, a
    /// page it keeps breaking. Anything else (credentials refused, an API unreachable
    /// after retries, the disk, the state database, the lock) stops the pass.
    pub fn is_window_failure(&self) -> bool {
        use crate::api::ApiError;
        match self {
            SyncError::Walk(
                WalkError::Incomplete { .. } | WalkError::TooDense { .. } | WalkError::OutsideWindow { .. },
            ) => true,
            SyncError::Sink(SinkError::Conflict { .. } | SinkError::Unreadable { .. }) => true,
            SyncError::Walk(WalkError::Api(api)) => matches!(
                api,
                ApiError::Permanent { .. }
                    | ApiError::DeepOffset { .. }
                    | ApiError::TooLarge { .. }
                    | ApiError::Exhausted { undecodable: true, .. }
            ),
            _ => false,
        }
    }
}

/// One pass over a set of windows: its counters and its stop signal.
pub struct Pass<'a> {
    /// What the pass works with.
    pub ctx: &'a Context,
    /// This pass's counters.
    pub summary: Summary,
    /// Set by SIGTERM/SIGINT: start no new window; in-flight ones finish.
    pub stop: Arc<AtomicBool>,
    /// The bar or progress lines of a long pass (begun by the pass once it has a plan).
    pub progress: crate::progress::Progress,
}

impl<'a> Pass<'a> {
    pub fn new(ctx: &'a Context, stop: Arc<AtomicBool>) -> Pass<'a> {
        let progress = crate::progress::Progress::new(crate::progress::Mode::detect(), ctx.client.stats.clone());
        Pass { ctx, summary: Summary::new(ctx.client.stats.clone()), stop, progress }
    }

    /// Counts a committed window everywhere it is counted: the summary, the metrics and
    /// the progress.
    pub fn window_done(&self, counts: &summary::WindowCounts) {
        self.summary.window_done(counts);
        self.ctx.metrics.window_done(counts);
        self.progress.window_done(counts.tasks);
    }

    /// Counts a range left for the next pass (after its checkpoint recorded it).
    pub fn left_behind(&self, window: Window, reason: &str) {
        self.summary.left_behind(window, reason);
        self.ctx.metrics.window_left_behind();
    }
}

/// What kind of pass to run.
#[derive(Debug, Clone, Copy)]
pub enum PassKind {
    /// A one-off backfill of this range.
    Backfill(Window),
    /// An incremental pass; `start` (`sync.start`) is where the very first one begins.
    Incremental { start: i64 },
}

/// Runs one pass, recording it in the `runs` table, and returns its totals.
pub async fn run_pass(ctx: &Context, kind: PassKind, stop: Arc<AtomicBool>) -> Result<Totals, SyncError> {
    let name = match kind {
        PassKind::Backfill(_) => "backfill",
        PassKind::Incremental { .. } => "incremental",
    };
    if let Some(remote) = ctx.sink.remote() {
        remote.claim(&ctx.cfg.storage.output_dir).await.map_err(SyncError::Sink)?;
    }
    let now = (ctx.clock)();
    let run_id = ctx.with_state(move |s| s.start_run(name, now)).await?;
    let pass = Pass::new(ctx, stop);
    let result = match kind {
        PassKind::Backfill(range) => backfill::backfill(&pass, range).await,
        PassKind::Incremental { start } => incremental::incremental(&pass, start).await,
    };
    pass.progress.finish();
    let totals = pass.summary.totals();
    let outcome = match &result {
        Err(_) => PassResult::Failed,
        Ok(()) if totals.left_behind.is_empty() => PassResult::Ok,
        Ok(()) => PassResult::Partial,
    };
    ctx.metrics.pass_finished(outcome, totals.seconds);
    let error = result.as_ref().err().map(ToString::to_string);
    let json = serde_json::to_string(&totals).unwrap_or_default();
    let now = (ctx.clock)();
    ctx.with_state(move |s| s.finish_run(run_id, now, &json, error.as_deref())).await?;
    result?;
    tracing::info!(kind = name, %totals, "Pass finished");
    Ok(totals)
}

/// Opens everything, runs one backfill of `range`, records the run, returns its totals.
pub async fn run_backfill(cfg: Config, clock: Clock, range: Window) -> Result<Totals, SyncError> {
    let ctx = Context::open(cfg, clock)?;
    let _served = ctx.serve_metrics().await?;
    run_pass(&ctx, PassKind::Backfill(range), Arc::new(AtomicBool::new(false))).await
}

/// Opens everything and runs one incremental pass; `start` is `sync.start`.
pub async fn run_incremental(cfg: Config, clock: Clock, start: i64) -> Result<Totals, SyncError> {
    let ctx = Context::open(cfg, clock)?;
    let _served = ctx.serve_metrics().await?;
    run_pass(&ctx, PassKind::Incremental { start }, Arc::new(AtomicBool::new(false))).await
}
