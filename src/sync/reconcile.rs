//! Reconciliation: the recent past re-counted against the API's own totals, so that the
//! data set converges to a source that changes its past (tasks listed late, deleted,
//! their create_time corrected) and to a state database restored from a backup.
//!
//! Counts are cheap, listings are not: for each UTC day of `sync.reconcile_window` before
//! the incremental pass's reach, one request with `count=1` gives the API's `total`, and
//! the state database gives ours (rows not deleted, plus distinct rejects, per minute;
//! rebuilt from the file when missing or recorded for another version of it). A day that
//! differs is bisected by counts, halves on minute boundaries, down to ranges that one page
//! re-lists or a single minute; only those are re-listed, all the ranges of one day in one
//! window (so that a task moved within its day is seen moving, not deleted), and committed
//! like any other window. The requests stay within
//! `days + 4 x log2(day_total / page_size) x differing_ranges + pages re-listed`.
//!
//! Equal counts can hide a deletion and a late listing in the same minute; docs/exactness.md says
//! what that costs and how the forward passes narrow it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use futures::StreamExt;

use super::SyncError;
use super::pass::{Pass, PassEvent};
use super::window::run_windows;
use crate::commit::window::Checkpoint;
use crate::plan::Window;
use crate::source::PageQuery;
use crate::state::{DayRecord, Reconciled};
use crate::time::{DAY, utc_date};

/// A range this narrow (seconds) that still differs is re-listed rather than halved.
const NARROWEST_S: i64 = 60;

/// Equal counts hide what leaves a day's total as it was: a task moved within its day, a
/// deletion and a late listing in the same minute, a field corrected in place. So every
/// reconciliation also re-lists one day in this many of its window in full, in rotation:
/// each day is listed whole at least once every `ROTATION` reconciliations (two days at
/// the default `sync.reconcile_every`), at the cost of `1/ROTATION` of the window's pages.
pub const ROTATION: i64 = 8;

/// Whether `day` (its first second) is re-listed whole by reconciliation number `n`.
pub fn rotated(day: i64, n: u64) -> bool {
    day.div_euclid(DAY).rem_euclid(ROTATION) == (n % ROTATION as u64) as i64
}

/// The days a reconciliation at `upto` covers: `[upto - window, upto)`, cut into UTC days,
/// not before `start`; the last one may end mid-day. Pure.
pub fn days(upto: i64, window: i64, start: i64) -> Vec<Window> {
    let upto = upto - upto.rem_euclid(60);
    let from = (upto - window).max(start);
    let mut day = from - from.rem_euclid(DAY);
    let mut out = Vec::new();
    while day < upto {
        let w = Window::new(day.max(from), (day + DAY).min(upto));
        if w.start < w.end {
            out.push(w);
        }
        day += DAY;
    }
    out
}

/// The most requests a reconciliation may make: one count per day, four per halving level
/// of each differing range, and the pages it re-lists.
pub fn budget(days: u64, day_totals: &[u64], page_size: u32, pages: u64) -> u64 {
    let levels = |t: u64| (t as f64 / f64::from(page_size.max(1))).max(2.0).log2().ceil() as u64;
    days + day_totals.iter().map(|&t| 4 * levels(t)).sum::<u64>() + pages
}

/// Whether a reconciliation is due at `now`.
pub async fn due(pass: &Pass<'_>, now: i64) -> Result<bool, SyncError> {
    let cfg = &pass.ctx.cfg.sync;
    if cfg.reconcile_window.is_zero() {
        return Ok(false);
    }
    let every = cfg.reconcile_every.as_secs() as i64;
    let last = pass.ctx.with_state(|s| s.last_reconciliation()).await?;
    Ok(last.is_none_or(|r| now - r.finished_at >= every || r.finished_at > now))
}

/// Re-counts the days before `upto` and re-lists what differs; returns its findings, which
/// are recorded in the state database and counted in the metrics.
pub async fn reconcile(pass: &Pass<'_>, upto: i64, start: i64) -> Result<Reconciled, SyncError> {
    let ctx = pass.ctx;
    let started_at = (ctx.clock)();
    let stats = ctx.client.stats.clone();
    let requests_before = stats.requests.load(Relaxed);
    let days = days(upto, ctx.cfg.sync.reconcile_window.as_secs() as i64, start);
    let n = ctx.with_state(|s| s.reconciliations()).await?;
    let mut found = Reconciled { started_at, days: days.len() as u64, ..Reconciled::default() };
    let compared: Vec<Result<Compared, SyncError>> = futures::stream::iter(days.iter().copied())
        .map(|day| compare_day(pass, day, rotated(day.start - day.start.rem_euclid(DAY), n)))
        .buffer_unordered(ctx.cfg.api.concurrency.max(1))
        .collect()
        .await;
    let (windows, totals) = plan_relisting(compared, &mut found)?;
    let (pages_before, before) = (stats.pages.load(Relaxed), pass.summary.totals());
    run_windows(pass, windows).await?;
    let after = pass.summary.totals();
    found.pages = stats.pages.load(Relaxed) - pages_before;
    (found.new, found.changed, found.deleted) = (
        after.counts.new - before.counts.new,
        after.counts.changed - before.counts.changed,
        after.counts.deleted - before.counts.deleted,
    );
    found.failed += (after.left_behind.len() - before.left_behind.len()) as u64;
    found.requests = stats.requests.load(Relaxed) - requests_before;
    found.budget = budget(found.days, &totals, ctx.client.page_size(), found.pages);
    found.finished_at = (ctx.clock)();
    if found.requests > found.budget {
        tracing::warn!(
            requests = found.requests,
            budget = found.budget,
            "The reconciliation made more requests than its budget (retries count too)"
        );
    }
    let record = found.clone();
    ctx.with_state(move |s| s.record_reconciliation(&record)).await?;
    pass.record(PassEvent::Reconciled(&found));
    tracing::info!(
        days = found.days,
        matched = found.matched,
        differing = found.differing,
        failed = found.failed,
        requests = found.requests,
        budget = found.budget,
        new = found.new,
        changed = found.changed,
        deleted = found.deleted,
        rebuilt = found.rebuilt,
        "Reconciliation finished"
    );
    Ok(found)
}

/// The API's total of each differing range's day, in order: what the budget is made of.
type Totals = Vec<u64>;

/// The windows that re-list what the days compared found to differ (and the days rotated
/// in whole), with the API's total of each differing range's day for the budget; the days'
/// findings counted in `found`. A day that could not be compared waits for the next
/// reconciliation; the other days go on.
fn plan_relisting(
    compared: Vec<Result<Compared, SyncError>>,
    found: &mut Reconciled,
) -> Result<(Vec<(Window, Checkpoint)>, Totals), SyncError> {
    let mut windows = Vec::new();
    let mut totals = Vec::new();
    for c in compared {
        let c = match c {
            Ok(c) => c,
            // A day the API will not count (or whose file cannot be read) waits for the
            // next reconciliation; the other days go on.
            Err(e) if e.is_window_failure() || matches!(e, SyncError::Sink(_)) => {
                tracing::warn!(reason = %e, "A day could not be reconciled; the next reconciliation tries it again");
                found.failed += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        found.rebuilt += u64::from(c.rebuilt);
        found.relisted += u64::from(c.rotated);
        if c.ranges.is_empty() {
            found.matched += 1;
            continue;
        }
        if c.rotated {
            windows.push((c.day, Checkpoint::Reconcile(Arc::from(c.ranges))));
            continue;
        }
        found.differing += c.ranges.len() as u64;
        totals.extend(std::iter::repeat_n(c.api_total, c.ranges.len()));
        tracing::info!(day = %utc_date(c.day.start), api_total = c.api_total, ours = c.ours, ranges = c.ranges.len(), "A day differs from the API's total; re-listing what differs");
        windows.push((c.day, Checkpoint::Reconcile(Arc::from(c.ranges))));
    }
    Ok((windows, totals))
}

/// One day compared with the API.
struct Compared {
    /// The UTC day compared (the part of it within the reconciliation window).
    day: Window,
    /// The API's `total` for the day; 0 when `rotated` (not counted).
    api_total: u64,
    /// What the data set holds for the day: rows not deleted plus distinct rejects; 0 when `rotated`.
    ours: u64,
    /// The ranges that differ, in time order; empty when the day matches.
    ranges: Vec<Window>,
    /// Whether its counts had to be rebuilt from the file.
    rebuilt: bool,
    /// Whether it is re-listed whole, in rotation, whatever its counts say.
    rotated: bool,
}

/// Counts one day at the API and in the data set, and bisects it where they differ; a day
/// `rotated` is re-listed whole without counting.
async fn compare_day(pass: &Pass<'_>, day: Window, rotated: bool) -> Result<Compared, SyncError> {
    if rotated {
        return Ok(Compared { day, api_total: 0, ours: 0, ranges: vec![day], rebuilt: false, rotated });
    }
    let (record, rebuilt) = day_record(pass, day).await?;
    let api_total = count(pass, day).await?;
    let day_start = day.start - day.start.rem_euclid(DAY);
    let held = |w: Window| record.held_between(w.start - day_start, w.end - day_start);
    let ours = held(day);
    let mut ranges = Vec::new();
    let mut stack = vec![(day, api_total)];
    let page = u64::from(pass.ctx.client.page_size());
    while let Some((w, api)) = stack.pop() {
        let mine = held(w);
        if api == mine {
            continue;
        }
        let mid = w.start + ((w.width() / 2) / 60) * 60;
        if w.width() <= NARROWEST_S || api.max(mine) <= page || mid <= w.start {
            ranges.push(w);
            continue;
        }
        let (left, right) = (Window::new(w.start, mid), Window::new(mid, w.end));
        let l = count(pass, left).await?;
        // The right half's total follows, unless the API moved under us: then ask it too.
        let r = if l <= api { api - l } else { count(pass, right).await? };
        stack.push((right, r));
        stack.push((left, l));
    }
    ranges.sort_by_key(|w| w.start);
    Ok(Compared { day, api_total, ours, ranges, rebuilt, rotated })
}

/// The API's `total` for `[w.start, w.end)`: one request with `count=1` (the API's end is
/// inclusive, so it is asked up to the second before `w.end`).
async fn count(pass: &Pass<'_>, w: Window) -> Result<u64, SyncError> {
    let q = PageQuery { start: w.start, end: w.end - 1, offset: 0, count: 1 };
    let page = pass.ctx.client.list_page(q).await.map_err(crate::source::paging::WalkError::from)?;
    Ok(page.total.unwrap_or(page.records.len() as u64))
}

/// Our counts of the day holding `day`: as recorded, or rebuilt from its file when none
/// are recorded or they describe another version of the file (a restored state database,
/// another writer's state). Returns whether they were rebuilt.
async fn day_record(pass: &Pass<'_>, day: Window) -> Result<(DayRecord, bool), SyncError> {
    let ctx = pass.ctx;
    let date = utc_date(day.start);
    let d = date.clone();
    let recorded = ctx.with_state(move |s| s.day_record(&d)).await?;
    let (sink, d) = (ctx.sink.clone(), date.clone());
    let version = ctx.blocking(move || crate::commit::patch::partition_version(&sink, &d)).await?;
    if let Some(r) = &recorded
        && version.as_ref().is_none_or(|v| *v == r.counts.version)
    {
        return Ok((r.clone(), false));
    }
    tracing::info!(partition = %date, "Counting a partition's rows: the state database has no counts for this version of its file");
    let base = ctx.sink.base(&date).await.map_err(SyncError::Sink)?;
    let counts = ctx.blocking(move || crate::commit::patch::count_partition(&base)).await?;
    let now = (ctx.clock)();
    let (d, c) = (date.clone(), counts.clone());
    ctx.with_state(move |s| s.store_day_counts(&d, &c, now)).await?;
    let d = date.clone();
    let record = ctx.with_state(move |s| s.day_record(&d)).await?;
    Ok((record.unwrap_or(DayRecord { counts, rejects: vec![0; 1440] }), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D0: i64 = 1_633_046_400;

    #[test]
    fn a_reconciliation_covers_whole_days_back_to_its_window_and_stops_at_its_reach() {
        let d = days(D0 + 3 * DAY + 3600 + 30, 2 * DAY, D0);
        assert_eq!(
            d,
            vec![
                Window::new(D0 + DAY + 3600, D0 + 2 * DAY),
                Window::new(D0 + 2 * DAY, D0 + 3 * DAY),
                Window::new(D0 + 3 * DAY, D0 + 3 * DAY + 3600)
            ],
            "the reach is cut to the minute, the window to sync.start"
        );
        assert_eq!(days(D0 + 10 * DAY, 30 * DAY, D0 + 8 * DAY).len(), 2, "nothing before sync.start");
    }

    #[test]
    fn every_day_is_relisted_whole_once_per_rotation() {
        for day in 0..40 {
            let hits = (0..ROTATION as u64).filter(|&n| rotated(D0 + day * DAY, n)).count();
            assert_eq!(hits, 1, "day {day}");
        }
        let per_run = (0..30).filter(|&d| rotated(D0 + d * DAY, 5)).count();
        assert!((3..=4).contains(&per_run), "{per_run} of 30 days in one reconciliation");
    }

    #[test]
    fn the_budget_grows_with_the_log_of_a_day_in_pages_per_differing_range() {
        assert_eq!(budget(30, &[], 50, 0), 30, "nothing differing: one request per day");
        // 3,200 tasks a day are 64 pages of 50: six halvings, four requests each.
        assert_eq!(budget(30, &[3200], 50, 2), 30 + 24 + 2);
        assert_eq!(budget(1, &[10], 50, 1), 1 + 4 + 1, "a small day still allows one level");
    }
}
