//! The incremental pass: from the cursor (minus `lookback`) up to now minus `settle`, plus
//! re-checks of tasks last seen unfinished, however far behind the cursor, until they are
//! final or older than `reopen_max_age`. Older unfinished tasks are re-checked less often
//! (see [`crate::state::State::unfinished_due`]).
//!
//! The cursor moves only past forward windows that are checkpointed (see
//! [`crate::plan::CursorTracker`]), so it never covers data that is not durable.

use std::sync::{Arc, Mutex};

use super::SyncError;
use super::pass::Pass;
use super::window::run_windows;
use crate::commit::window::Checkpoint;
use crate::plan::{CursorTracker, Window, pending_windows, recheck_windows};
use crate::state::{INCREMENTAL, RECHECK};

/// Unfinished tasks closer than this share one re-check window.
const RECHECK_GAP_S: i64 = 15 * 60;

/// A pass with more forward windows than this (days) shows its progress: a first pass
/// from `sync.start`, or one catching up after a long stop.
const LONG_PASS_WINDOWS: usize = 2;

/// The windows of one incremental pass, planned from the cursor and the unfinished tasks.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// `[cursor - lookback, now - settle)`, day-aligned.
    pub forward: Vec<Window>,
    /// Windows holding unfinished tasks created before the forward range.
    pub recheck: Vec<Window>,
}

/// Where an incremental pass may reach, in unix seconds and seconds.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    /// `sync.start`: where the very first pass begins, and no pass goes before.
    pub start: i64,
    /// `sync.settle`: the newest seconds are never asked about.
    pub settle: i64,
    /// `sync.lookback`: re-scanned before the cursor on every pass.
    pub lookback: i64,
}

/// Plans one pass; pure. `unfinished` are the create times of tasks still re-checked.
pub fn plan(now: i64, cursor: Option<i64>, reach: Reach, unfinished: &[i64]) -> Plan {
    let upper = now - reach.settle;
    let lower = match cursor {
        Some(c) => (c - reach.lookback).max(reach.start).min(upper),
        None => reach.start.min(upper),
    };
    let forward = if lower < upper { pending_windows(lower, upper, &[]) } else { Vec::new() };
    let before: Vec<i64> = unfinished.iter().copied().filter(|t| *t < lower).collect();
    Plan { forward, recheck: recheck_windows(&before, RECHECK_GAP_S) }
}

/// Runs one incremental pass; `start` is `sync.start`.
pub async fn incremental(pass: &Pass<'_>, start: i64) -> Result<(), SyncError> {
    let ctx = pass.ctx;
    let cfg = &ctx.cfg.sync;
    let now = (ctx.clock)();
    let give_up_before = now - cfg.reopen_max_age.as_secs() as i64;
    let (cursor, unfinished, given_up, left) = ctx
        .with_state(move |s| {
            let given_up = s.give_up_before(give_up_before, now)?;
            let unfinished = s.unfinished_due(give_up_before, i64::MAX, now)?;
            Ok((s.cursor(INCREMENTAL)?, unfinished, given_up, s.left_behind(None)?))
        })
        .await?;
    // Ranges given up are no longer retried: the cursor has moved on past them.
    let left: Vec<_> = left.into_iter().filter(|l| l.given_up_at.is_none()).collect();
    if given_up > 0 {
        tracing::warn!(tasks = given_up, older_than = %crate::time::show(give_up_before), "Gave up re-checking unfinished tasks past sync.reopen_max_age");
    }
    let reach = Reach { start, settle: cfg.settle.as_secs() as i64, lookback: cfg.lookback.as_secs() as i64 };
    let api_now = ctx.planning_now().await?;
    let cursor = pull_back(pass, cursor, api_now - reach.settle).await?;
    let p = plan(api_now, cursor, reach, &unfinished);
    tracing::info!(
        forward = p.forward.len(), recheck = p.recheck.len(), unfinished_due = unfinished.len(),
        cursor = %cursor.map(crate::time::show).unwrap_or_else(|| "none".into()), "Incremental pass planned"
    );
    let long = p.forward.len() > LONG_PASS_WINDOWS;
    let tracker = Arc::new(Mutex::new(CursorTracker::new(&p.forward)));
    // What earlier passes left behind goes first: re-checks left behind, then the forward
    // windows holding a part left behind (the cursor waits before those).
    let holds = |w: &Window| left.iter().any(|l| l.job_id == INCREMENTAL && l.start < w.end && w.start < l.end);
    let mut forward = p.forward;
    forward.sort_by_key(|w| !holds(w));
    let retried =
        left.iter().filter(|l| l.job_id == RECHECK).map(|l| (Window::new(l.start, l.end), Checkpoint::Recheck));
    let mut windows: Vec<(Window, Checkpoint)> = retried.collect();
    windows.extend(forward.into_iter().map(|w| (w, Checkpoint::Incremental(tracker.clone()))));
    windows.extend(p.recheck.into_iter().map(|w| (w, Checkpoint::Recheck)));
    if long {
        pass.progress.begin("catching up", windows.len());
    }
    run_windows(pass, windows).await?;
    // The very first pass has just listed everything: nothing to re-count yet.
    if cursor.is_some() {
        reconcile_if_due(pass, reach).await?;
    }
    Ok(())
}

/// A cursor ahead of what may be asked about (the API's now minus `settle`) was planned by
/// a clock that ran ahead: it is pulled back, so that what lies between is walked when
/// the clock is right again.
async fn pull_back(pass: &Pass<'_>, cursor: Option<i64>, limit: i64) -> Result<Option<i64>, SyncError> {
    match cursor {
        Some(c) if c > limit => {
            tracing::warn!(cursor = %crate::time::show(c), api_now_less_settle = %crate::time::show(limit), "The cursor is ahead of the API's clock; pulling it back so that nothing in between is skipped");
            pass.ctx.with_state(move |s| s.pull_back_cursor(INCREMENTAL, limit)).await?;
            Ok(Some(limit))
        }
        other => Ok(other),
    }
}

/// Runs a reconciliation when one is due, up to where the forward windows began (the
/// lookback before the cursor, which every pass re-walks anyway).
async fn reconcile_if_due(pass: &Pass<'_>, reach: Reach) -> Result<(), SyncError> {
    let ctx = pass.ctx;
    let now = (ctx.clock)();
    if pass.stop.load(std::sync::atomic::Ordering::SeqCst) || !super::reconcile::due(pass, now).await? {
        return Ok(());
    }
    let cursor = ctx.with_state(|s| s.cursor(INCREMENTAL)).await?;
    let Some(cursor) = cursor else { return Ok(()) };
    let upto = (cursor - reach.lookback).max(reach.start);
    super::reconcile::reconcile(pass, upto, reach.start).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D0: i64 = 1_633_046_400;

    fn reach(lookback: i64) -> Reach {
        Reach { start: D0, settle: 120, lookback }
    }

    #[test]
    fn the_first_pass_starts_at_sync_start_and_stops_short_of_settle() {
        let p = plan(D0 + 3600, None, reach(3600), &[]);
        assert_eq!(p.forward, vec![Window::new(D0, D0 + 3600 - 120)]);
        assert!(p.recheck.is_empty());
    }

    #[test]
    fn later_passes_rescan_lookback_and_recheck_older_unfinished_tasks() {
        let p = plan(D0 + 10 * 3600, Some(D0 + 9 * 3600), reach(3600), &[D0 + 10, D0 + 15, D0 + 8 * 3600 + 5]);
        assert_eq!(p.forward, vec![Window::new(D0 + 8 * 3600, D0 + 10 * 3600 - 120)]);
        assert_eq!(
            p.recheck,
            vec![Window::new(D0 + 10, D0 + 16)],
            "tasks inside the forward range are not re-checked twice"
        );
    }

    #[test]
    fn a_pass_right_after_another_has_only_the_lookback_to_scan() {
        let p = plan(D0 + 3600, Some(D0 + 3600 - 120), reach(600), &[]);
        assert_eq!(p.forward, vec![Window::new(D0 + 3600 - 720, D0 + 3600 - 120)]);
    }
}
