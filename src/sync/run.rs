//! Running a pass: open what it needs, run the backfill or incremental plan, record the
//! run in the state database and its end in the metrics.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::SyncError;
use super::context::Context;
use super::pass::Pass;
use super::summary::Totals;
use super::{backfill, incremental};
use crate::config::Config;
use crate::metrics::PassResult;
use crate::plan::Window;
use crate::time::Clock;

/// What kind of pass to run.
#[derive(Debug, Clone, Copy)]
pub enum PassKind {
    /// A one-off backfill of this range.
    Backfill(Window),
    /// An incremental pass; `start` (`sync.start`) is where the very first one begins.
    Incremental { start: i64 },
}

impl PassKind {
    /// Its name in the `runs` table, `status` and the log.
    pub fn name(self) -> &'static str {
        match self {
            PassKind::Backfill(_) => "backfill",
            PassKind::Incremental { .. } => "incremental",
        }
    }
}

/// Runs one pass, recording it in the `runs` table, and returns its totals.
pub async fn run_pass(ctx: &Context, kind: PassKind, stop: Arc<AtomicBool>) -> Result<Totals, SyncError> {
    let name = kind.name();
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
