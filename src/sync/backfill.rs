//! The one-off backfill of `[from, to)`: progress kept as completed intervals of its job,
//! so the same command resumes where a crash or Ctrl-C left it. It never moves the
//! incremental cursor.

use std::sync::Arc;

use super::SyncError;
use super::pass::Pass;
use super::window::run_windows;
use crate::commit::window::Checkpoint;
use crate::plan::{Window, pending_windows};

/// A backfill whose windows all end this long before our "now" does not ask for the API's
/// clock: no API lags by days.
const API_CLOCK_HORIZON_S: i64 = crate::time::DAY;

/// The job id of a backfill: the same `--from/--to` resumes the same job.
pub fn backfill_job_id(range: Window) -> String {
    format!("backfill:{}-{}", range.start, range.end)
}

/// A one-off backfill of `range`; resumable, it skips windows already done.
pub async fn backfill(pass: &Pass<'_>, range: Window) -> Result<(), SyncError> {
    let job: Arc<str> = backfill_job_id(range).into();
    let now = (pass.ctx.clock)();
    let j = job.clone();
    let (done, left) = pass
        .ctx
        .with_state(move |s| {
            s.ensure_job(&j, "backfill", range, now)?;
            Ok((s.done_intervals(&j)?, s.left_behind(Some(&j))?))
        })
        .await?;
    // A backfill never asks about the future, ours or the API's: a window reaching past
    // "now" keeps gaining tasks while it is paged and cannot be checked complete. What lies
    // beyond is left undone in the job, for the same command later (or the incremental passes).
    let pending =
        |reach: i64| if reach > range.start { pending_windows(range.start, reach, &done) } else { Vec::new() };
    let mut reach = range.end.min(now);
    let mut windows = pending(reach);
    // Only a backfill with something to do near now asks the API for its clock.
    if windows.last().is_some_and(|w| w.end > now - API_CLOCK_HORIZON_S) {
        reach = reach.min(pass.ctx.planning_now().await?);
        windows = pending(reach);
    }
    // The newest `sync.settle` is fetched but not recorded done (see `commit/window.rs`): tasks
    // listed late there are fetched by the rerun that does the rest.
    let settled = reach <= now - pass.ctx.cfg.sync.settle.as_secs() as i64;
    // What an earlier run left behind is retried first.
    windows.sort_by_key(|w| !left.iter().any(|l| l.start < w.end && w.start < l.end));
    let skipped = (reach - range.start).max(0) - windows.iter().map(Window::width).sum::<i64>();
    tracing::info!(range = %range, windows = windows.len(), skipped_s = skipped, "Backfill planned");
    if reach < range.end {
        tracing::info!(until = %crate::time::show(reach), "Backfill stops at now minus sync.settle; run it again later for the rest of its range");
    }
    let all_planned = windows.len();
    pass.progress.begin("backfill", all_planned);
    let checkpoint = Checkpoint::Backfill(job.clone());
    let done_now = run_windows(pass, windows.into_iter().map(|w| (w, checkpoint.clone())).collect()).await?;
    if done_now == all_planned && reach == range.end && settled {
        pass.ctx.with_state(move |s| s.finish_job(&job, now)).await?;
    }
    Ok(())
}
