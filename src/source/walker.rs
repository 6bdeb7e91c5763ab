//! The window walker: everything `list_task` holds for one window, complete and checked,
//! handed over one leaf (a range within `max_offset`) at a time.
//!
//! A window whose `total` is beyond what one leaf may hold (`api.max_offset`, or
//! [`super::paging::LEAF_TASKS`] if lower) is split into equal parts, recursively, before it is paged;
//! one whose deep pages the server refuses is split too. Pages advance by what was actually
//! received (servers clamp `count`); after the first page the rest are fetched
//! concurrently. The union of distinct records must reach `total`; paging is unstable, so a
//! short window is paged again, sequentially, adding to what it already has.
//!
//! A range that still does not settle (its `total` keeps growing: records listed late, or
//! an API whose clock runs behind ours) is split and its parts walked; a part that does not
//! settle at [`SMALLEST_UNSETTLED_S`] is handed over as [`Step::LeftBehind`], so that what
//! did settle can be committed and the rest waits for the next pass.
//!
//! The API is asked for `[start, end]`, both ends inclusive. A record at the end second
//! belongs to the next range; any other record outside the range is an error naming the
//! window and the likely cause, never dropped in silence.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use chrono::FixedOffset;

use super::paging::{Gathered, Paged, Paging, WalkError, WalkLimits};
use crate::plan::{LeftBehind, Window};
use crate::row::TaskRow;
use crate::source::client::Client;
use crate::source::decode::{Record, Reject};

/// One leaf of a window: a range paged completely, handed over before the next is paged.
#[derive(Debug)]
pub struct Leaf {
    /// The range; leaves of a window come in time order and cover it exactly.
    pub window: Window,
    /// One row per task_id created inside `window`, the last observation winning.
    pub rows: Vec<TaskRow>,
    /// Records that could not be decoded, not already handed over with an earlier leaf.
    pub rejects: Vec<Reject>,
    /// Whether unstable paging made it need more than one paging.
    pub repaged: bool,
}

/// What the walker hands over next, in time order.
#[derive(Debug)]
pub enum Step {
    /// A range paged completely.
    Leaf(Leaf),
    /// A range that did not settle at the smallest width: left for the next pass.
    LeftBehind(LeftBehind),
}

/// A range narrower than this that still does not settle is left for the next pass
/// instead of being split again: a minute of tasks costs a few pages to re-walk.
pub const SMALLEST_UNSETTLED_S: i64 = 60;

/// Parts a range that does not settle is split into.
const UNSETTLED_PARTS: u64 = 4;

/// Splits of unsettled ranges one window may make: enough to narrow a day to a minute at
/// its growing edge (six levels), and to bound the requests when it grows everywhere.
const UNSETTLED_SPLITS: u32 = 12;

/// Walks one window leaf by leaf, in time order. When the server is far away, the range
/// after the one being handed over is already being paged ([`RANGES_AHEAD`]), so that the
/// server always has `api.concurrency` requests to answer; only those leaves are ever
/// held in memory.
pub struct Walk<'c> {
    /// The API client every page is asked of.
    client: &'c Arc<Client>,
    /// `max_offset`, repagings and concurrency the walk works within.
    limits: WalkLimits,
    /// Ranges still to hand over, the next one first; the first few are being paged.
    pending: VecDeque<(Window, Option<Paging>)>,
    /// Rejects already handed over: a reject has no create_time to place it in one leaf.
    rejects_seen: HashSet<crate::row::Text>,
    /// `api.local_time_zone`, named when a record falls outside its window.
    zone: FixedOffset,
    /// Splits of ranges that do not settle still allowed in this window.
    unsettled_splits: u32,
}

/// Ranges paged ahead of the one being handed over, when the server is far away
/// ([`Client::server_is_far`]): the next leaf's first page leaves while the current leaf's
/// last pages arrive. Measured at 1M tasks, 50 ms away (BENCHMARKS.md): one ahead took
/// concurrency 16 from 1.46x to 1.12x of the ideal time; two gave 1.09x for 7 MB more.
/// Near (loopback), merging bounds the pass and a range ahead only holds a leaf longer.
pub const RANGES_AHEAD: usize = 1;

impl Walk<'_> {
    /// Ranges split so far because they did not settle.
    pub fn unsettled_splits(&self) -> u64 {
        u64::from(UNSETTLED_SPLITS - self.unsettled_splits)
    }
}

impl<'c> Walk<'c> {
    pub fn new(client: &'c Arc<Client>, window: Window, limits: WalkLimits) -> Walk<'c> {
        Walk::over(client, &[window], limits)
    }

    /// Walks several ranges (in time order, not overlapping) as one window: the parts of a
    /// day that a reconciliation re-lists.
    pub fn over(client: &'c Arc<Client>, ranges: &[Window], limits: WalkLimits) -> Walk<'c> {
        let zone = client.zone();
        Walk {
            client,
            limits,
            pending: ranges.iter().map(|w| (*w, None)).collect(),
            rejects_seen: HashSet::new(),
            zone,
            unsettled_splits: UNSETTLED_SPLITS,
        }
    }

    /// The next step in time order, or `None` when the window is done. A range whose
    /// `total` is beyond `max_offset` (or whose deep pages are refused) is split first; one
    /// that does not settle is split, then left behind.
    pub async fn next_step(&mut self) -> Result<Option<Step>, WalkError> {
        loop {
            let ahead = if self.client.server_is_far() { RANGES_AHEAD } else { 0 };
            for (w, paging) in self.pending.iter_mut().take(1 + ahead) {
                paging.get_or_insert_with(|| Paging::start(self.client, *w, self.limits));
            }
            let Some((w, Some(paging))) = self.pending.pop_front() else { return Ok(None) };
            match paging.finish(w).await? {
                Paged::Leaf(got, repaged) => return self.leaf(w, got, repaged).map(|leaf| Some(Step::Leaf(leaf))),
                Paged::Split(total) => {
                    if let Some(dense) = self.split(w, total) {
                        return Ok(Some(dense));
                    }
                }
                Paged::Unsettled(e) => match w.split_into(UNSETTLED_PARTS) {
                    // A range still gaining records is narrowed to a minute (its growing
                    // edge); one whose total is never served, down to the second, so that
                    // only the seconds at fault wait. The budget bounds the requests when
                    // records arrive everywhere at once.
                    Some(parts)
                        if self.unsettled_splits > 0
                            && (w.width() > SMALLEST_UNSETTLED_S || (!e.grew() && w.width() > 1)) =>
                    {
                        self.unsettled_splits -= 1;
                        tracing::debug!(window = %w, reason = %e, "Splitting a range that does not settle");
                        self.queue_first(parts);
                    }
                    _ => return Ok(Some(Step::LeftBehind(LeftBehind { window: w, reason: e.to_string() }))),
                },
            }
        }
    }

    /// Splits `w` into parts expected to hold about [`super::paging::LEAF_TASKS`] each (at least two),
    /// handed over next. Splitting in one step wastes one probe page per window, where
    /// halving wasted one per level. A single second holding more than offset paging
    /// reaches cannot be split: it is left behind alone, and the rest of its window goes on.
    fn split(&mut self, w: Window, total: u64) -> Option<Step> {
        let max = self.limits.max_offset;
        let Some(parts) = w.split_into(total.div_ceil(self.limits.leaf_tasks())) else {
            let reason = WalkError::TooDense { window: w, total, max }.to_string();
            return Some(Step::LeftBehind(LeftBehind { window: w, reason }));
        };
        tracing::debug!(window = %w, total, parts = parts.len(), "Splitting a window into leaves");
        self.queue_first(parts);
        None
    }

    /// Puts `parts` (in time order) before every range still pending.
    fn queue_first(&mut self, parts: Vec<Window>) {
        for part in parts.into_iter().rev() {
            self.pending.push_front((part, None));
        }
    }

    /// The leaf of `window`: one row per task inside it; a record at its end second goes
    /// to the next range, any other record outside it is an error.
    fn leaf(&mut self, window: Window, got: Gathered, repaged: bool) -> Result<Leaf, WalkError> {
        let mut leaf = Leaf { window, rows: Vec::with_capacity(got.records.len()), rejects: Vec::new(), repaged };
        let mut rejects = Vec::new();
        let mut strays = Vec::new();
        for (seq, record) in got.records {
            let reject_seen = |r: &Record, seen: &mut HashSet<crate::row::Text>| !seen.insert(r.identity());
            match record {
                Record::Task(t) if window.contains(t.create_time) => leaf.rows.push(t),
                Record::Task(t) if t.create_time == window.end => {}
                Record::Task(t) => strays.push(t),
                Record::Reject(_) if reject_seen(&record, &mut self.rejects_seen) => {}
                Record::Reject(r) => rejects.push((seq, r)),
            }
        }
        if !strays.is_empty() {
            return Err(outside(window, &strays, got.local_times, self.zone));
        }
        rejects.sort_unstable_by_key(|(seq, _)| *seq);
        leaf.rejects = rejects.into_iter().map(|(_, r)| r).collect();
        Ok(leaf)
    }
}

/// The error for tasks found outside `window`, naming the first and the likely cause:
/// when the page's times came as local-time strings, the zone they were read in, and the
/// nearest zone in which every stray would fall inside the window.
fn outside(window: Window, strays: &[TaskRow], local_times: u64, zone: FixedOffset) -> WalkError {
    let first = strays.iter().min_by_key(|t| (t.create_time, &t.task_id)).expect("at least one stray");
    let cause = if local_times > 0 {
        let times = strays.iter().map(|t| t.create_time);
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), c| (lo.min(c), hi.max(c)));
        let fits = crate::time::zone_that_fits(zone, (lo, hi), (window.start, window.end));
        format!(
            "{} such tasks; their times came as local-time strings read in api.local_time_zone = {zone}, which is likely wrong{}",
            strays.len(),
            fits.map(|z| format!(" (read in {z} they would fall inside the window)")).unwrap_or_default()
        )
    } else {
        format!("{} such tasks; the API seems to filter on something other than create_time", strays.len())
    };
    WalkError::OutsideWindow { window, task_id: first.task_id.to_string(), create_time: first.create_time, cause }
}
