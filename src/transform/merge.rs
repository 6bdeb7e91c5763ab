//! The partition merge, pure: stored rows + new observations -> what changes ([`delta`]),
//! and stored rows + that delta -> the partition's new rows ([`overlay`], streaming).
//!
//! Per task_id the newest observation wins; `first_seen_at` is kept from the oldest, and
//! `changed_at` moves only when the content changes, so re-reading an unchanged task
//! changes nothing and a quiet pass rewrites no file.

use std::collections::HashMap;

use crate::row::{StoredRow, TaskRow, Text};

/// The merged partition and what changed in it: the in-memory reference the tests check
/// the streaming rewrite against.
#[cfg(test)]
#[derive(Debug)]
pub struct Merged {
    /// All rows of the partition, sorted by (create_time, task_id).
    pub rows: Vec<StoredRow>,
    /// Task ids not in the partition before.
    pub new: usize,
    /// Task ids whose content differs from what was stored.
    pub changed: usize,
}

#[cfg(test)]
impl Merged {
    /// Whether the partition file must be rewritten.
    pub fn is_changed(&self) -> bool {
        self.new + self.changed > 0
    }
}

/// What a set of observations changes in a range of a partition.
#[derive(Debug, Default)]
pub struct Delta {
    /// The new and changed rows only, sorted by (create_time, task_id).
    pub rows: Vec<StoredRow>,
    /// Task ids not in the range before.
    pub new: usize,
    /// Task ids whose content differs from what was stored.
    pub changed: usize,
    /// Task ids whose stored row came from a newer observation than this one: left as
    /// they are, and the caller must not record this observation's state of them.
    pub stale: Vec<Text>,
    /// Stored rows of the range, not marked deleted, that the observations (a complete
    /// listing of the range) no longer hold: deleted upstream, or moved to another
    /// create_time. The window decides which once all its leaves are in. Keys only: a
    /// listing that lost a whole day must not hold the day in memory.
    pub missing: Vec<(i64, Text)>,
    /// Task ids observed here with no stored row in the range (new, or moved here from
    /// elsewhere in the partition), with their create_time.
    pub new_ids: Vec<(Text, i64)>,
    /// Keys of stored rows whose task is listed in the same range under another
    /// create_time: the new row is among `rows`, the old one must go.
    pub moved: Vec<(i64, Text)>,
}

/// When and in which order a set of observations was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Microseconds since the epoch, by the wall clock: the stamp of `first_seen_at` and
    /// `changed_at`, never used to order observations.
    pub at: i64,
    /// The state database's observation sequence: what orders them.
    pub seq: i64,
}

/// Tests stamp a pass with one number: its time and its place in the sequence alike.
#[cfg(test)]
impl From<i64> for Observed {
    fn from(n: i64) -> Observed {
        Observed { at: n, seq: n }
    }
}

/// The sort key of a partition file.
pub fn key(row: &StoredRow) -> (i64, &str) {
    (row.task.create_time, row.task.task_id.as_str())
}

/// Compares `observations` (newest last when a task_id repeats) with `existing`, the stored
/// rows of the same range, and returns only what must change, stamped with `seen`.
/// Unchanged tasks produce nothing, so a re-scan that finds nothing new leaves the
/// partition untouched. A stored row from a newer observation (a higher sequence) is never
/// replaced; the wall clock orders nothing, and `changed_at` never moves back.
pub fn delta(existing: &[StoredRow], observations: Vec<TaskRow>, seen: Observed) -> Delta {
    let stored: HashMap<&str, &StoredRow> = existing.iter().map(|r| (r.task.task_id.as_str(), r)).collect();
    // A stable sort keeps repeated observations of a task in arrival order: the last wins.
    // Sorting positions rather than the rows themselves saves moving ~450-byte rows about.
    let mut order: Vec<usize> = (0..observations.len()).collect();
    order.sort_by(|&a, &b| {
        (observations[a].create_time, observations[a].task_id.as_str())
            .cmp(&(observations[b].create_time, observations[b].task_id.as_str()))
    });
    let mut slots: Vec<Option<TaskRow>> = observations.into_iter().map(Some).collect();
    let observations: Vec<TaskRow> = order.into_iter().map(|i| slots[i].take().expect("each position once")).collect();
    let mut out = Delta { rows: Vec::with_capacity(observations.len()), ..Delta::default() };
    let mut listed: std::collections::HashSet<&str> = std::collections::HashSet::with_capacity(stored.len());
    let mut observations = observations.into_iter().peekable();
    while let Some(task) = observations.next() {
        if observations.peek().is_some_and(|next| next.task_id == task.task_id && next.create_time == task.create_time)
        {
            continue;
        }
        let old = stored.get(task.task_id.as_str()).copied();
        if let Some(old) = old {
            listed.insert(old.task.task_id.as_str());
        }
        match old {
            Some(old) if old.task == task && old.deleted_at.is_none() => {}
            Some(old) if seen.seq < old.observed_seq => out.stale.push(task.task_id),
            // A final status never goes back to an unfinished one: an observation that says
            // so is older than what is stored, whatever its number (a source whose clock
            // was set back, a replica that lags).
            Some(old) if old.task.is_final() && !task.is_final() => out.stale.push(task.task_id),
            Some(old) => {
                if old.task.create_time == task.create_time {
                    out.changed += 1;
                } else {
                    out.moved.push((old.task.create_time, old.task.task_id.clone()));
                }
                let changed_at = seen.at.max(old.changed_at);
                let first_seen_at = old.first_seen_at;
                out.rows.push(StoredRow { task, first_seen_at, changed_at, observed_seq: seen.seq, deleted_at: None });
            }
            None => {
                out.new += 1;
                out.new_ids.push((task.task_id.clone(), task.create_time));
                let at = seen.at;
                out.rows.push(StoredRow {
                    task,
                    first_seen_at: at,
                    changed_at: at,
                    observed_seq: seen.seq,
                    deleted_at: None,
                });
            }
        }
    }
    out.missing = existing
        .iter()
        .filter(|r| r.deleted_at.is_none() && r.observed_seq <= seen.seq && !listed.contains(r.task.task_id.as_str()))
        .map(|r| (r.task.create_time, r.task.task_id.clone()))
        .collect();
    out
}

/// Whether `missing` of `compared` stored rows may be marked deleted at once: not more
/// than ten when that is over half of them. A customer deletes tasks one by one or in
/// batches; an API that answers a day with `total: 0` for a while must not make the day
/// look deleted (the next reconciliation lists it again).
pub fn believable_deletions(missing: usize, compared: usize) -> bool {
    missing <= 10 || missing * 2 <= compared
}

/// A stored row marked deleted by observation `seen`: kept, so that what ran is still
/// reported, with the time a complete listing first no longer had it.
pub fn mark_deleted(mut row: StoredRow, seen: Observed) -> StoredRow {
    row.deleted_at = Some(seen.at);
    row.changed_at = seen.at.max(row.changed_at);
    row.observed_seq = seen.seq;
    row
}

/// The stored rows with a delta laid over them: a sorted merge-join on (create_time,
/// task_id) in which a delta row replaces the stored row of the same key. Both inputs must
/// be sorted by that key; the output is too. It holds one row of each at a time, so a
/// partition of any size streams through it.
pub fn overlay<I: Iterator<Item = StoredRow>>(stored: I, delta: Vec<StoredRow>) -> Overlay<I> {
    Overlay { stored: stored.peekable(), delta: delta.into_iter().peekable() }
}

/// The iterator of [`overlay`].
pub struct Overlay<I: Iterator<Item = StoredRow>> {
    /// The stored rows, in (create_time, task_id) order.
    stored: std::iter::Peekable<I>,
    /// The new and changed rows, in the same order; each replaces the stored row of its key.
    delta: std::iter::Peekable<std::vec::IntoIter<StoredRow>>,
}

impl<I: Iterator<Item = StoredRow>> Iterator for Overlay<I> {
    type Item = StoredRow;
    fn next(&mut self) -> Option<StoredRow> {
        let order = match (self.stored.peek(), self.delta.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(s), Some(d)) => key(s).cmp(&key(d)),
        };
        match order {
            std::cmp::Ordering::Less => self.stored.next(),
            std::cmp::Ordering::Greater => self.delta.next(),
            std::cmp::Ordering::Equal => {
                self.stored.next();
                self.delta.next()
            }
        }
    }
}

/// Merges `observations` into `existing` (sorted by [`key`]), in memory: [`delta`] then
/// [`overlay`]. The sync streams the same two steps through `sink::partition`; tests
/// check it against this.
#[cfg(test)]
pub fn merge(mut existing: Vec<StoredRow>, observations: Vec<TaskRow>, seen: impl Into<Observed>) -> Merged {
    existing.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
    let d = delta(&existing, observations, seen.into());
    let (new, changed) = (d.new, d.changed);
    Merged { rows: overlay(existing.into_iter(), d.rows).collect(), new, changed }
}

/// [`merge`] of a complete listing of `window`: stored rows of the window that the listing
/// no longer has are marked deleted, as the streaming rewrite marks them. The tests'
/// reference for it.
#[cfg(test)]
pub fn merge_listing(
    existing: Vec<StoredRow>,
    observations: Vec<TaskRow>,
    window: crate::plan::Window,
    seen: impl Into<Observed>,
) -> (Merged, usize) {
    let seen = seen.into();
    let listed: std::collections::HashSet<Text> = observations.iter().map(|t| t.task_id.clone()).collect();
    let compared = existing.iter().filter(|r| window.contains(r.task.create_time)).count();
    let mut m = merge(existing, observations, seen);
    let gone = |r: &StoredRow| {
        window.contains(r.task.create_time) && r.deleted_at.is_none() && !listed.contains(&r.task.task_id)
    };
    let missing = m.rows.iter().filter(|r| gone(r)).count();
    if !believable_deletions(missing, compared) {
        return (m, 0);
    }
    for row in m.rows.iter_mut().filter(|r| gone(r)) {
        *row = mark_deleted(row.clone(), seen);
    }
    (m, missing)
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
