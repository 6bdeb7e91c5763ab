//! Every observed version of each task (SCD type 2), derived, pure: a day's history and
//! its new `tasks` file in, its new history out ([`derive`]).
//!
//! A version is one content of a task's row as some pass first saw it: it is valid from
//! that pass's `changed_at` until the `changed_at` of the next version (`valid_to`, null
//! for the current one), and `observed_seq`, the observation order that survives a lost
//! state database, numbers it. The history is a function of what the `tasks` files were,
//! never of what a pass fetched: a version opens exactly when a day's `tasks` file holds
//! a row whose observation differs from the history's current version of that task. So
//! deriving it twice from the same `tasks` file changes nothing (a replay after a crash adds
//! no row twice), and the current version always equals the task's row in `tasks`.
//!
//! A deletion upstream is a version too: it closes the last live version at `deleted_at`
//! and opens one with `deleted_at` set, the task's row in `tasks`; a task listed again opens
//! a live one.

use std::collections::HashMap;

use crate::row::{StoredRow, Text};

/// One version of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The task's row as `tasks` held it while this version was current.
    pub row: StoredRow,
    /// Microseconds since the epoch: when a pass first saw this version.
    pub valid_from: i64,
    /// Microseconds since the epoch: when a pass first saw the next version; `None` for the
    /// current one.
    pub valid_to: Option<i64>,
}

/// The sort key of a history file: versions of a task in observation order, placed by the
/// create_time each version had (a corrected create_time moves only its later versions).
pub fn history_key(r: &HistoryRow) -> (i64, &str, i64) {
    (r.row.task.create_time, r.row.task.task_id.as_str(), r.row.observed_seq)
}

/// What one derivation did.
#[derive(Debug, Default, PartialEq)]
pub struct Derived {
    /// Versions opened.
    pub opened: u64,
    /// Current versions whose task moved to a later create_time of the day, found only
    /// after they were written: their `valid_to`, by [`history_key`], for a second pass.
    pub late_closes: HashMap<(i64, Text, i64), i64>,
    /// Current versions whose task the `tasks` file no longer holds at all (it should not
    /// happen: `tasks` keeps deleted tasks): left current, counted, so `verify` names them.
    pub orphans: u64,
}

/// The next item of a fallible stream, looked at before it is taken.
struct Head<I, T> {
    /// The rest of the stream.
    rest: I,
    /// Its next item, already read.
    next: Option<T>,
}

impl<T, E, I: Iterator<Item = Result<T, E>>> Head<I, T> {
    fn new(mut rest: I) -> Result<Head<I, T>, E> {
        let next = rest.next().transpose()?;
        Ok(Head { rest, next })
    }

    fn peek(&self) -> Option<&T> {
        self.next.as_ref()
    }

    fn take(&mut self) -> Result<Option<T>, E> {
        let upcoming = self.rest.next().transpose()?;
        Ok(std::mem::replace(&mut self.next, upcoming))
    }
}

/// Lays a day's new `tasks` rows (sorted by (create_time, task_id)) over its stored history
/// (sorted by [`history_key`]), emitting the new history in the same order. Streams: it
/// holds one task's versions at a time, plus, when there was a history, the ids of tasks
/// without a version at their place (new ones, or moved within the day).
pub fn derive<E>(
    history: impl Iterator<Item = Result<HistoryRow, E>>,
    tasks: impl Iterator<Item = Result<StoredRow, E>>,
    mut emit: impl FnMut(HistoryRow) -> Result<(), E>,
) -> Result<Derived, E> {
    let (mut h, mut n) = (Head::new(history)?, Head::new(tasks)?);
    let had_history = h.peek().is_some();
    let mut out = Derived::default();
    // Tasks given a version at a place where they had none: a current version of theirs
    // elsewhere is their old place, closed when the new one opens.
    let mut placed: HashMap<Text, i64> = HashMap::new();
    let mut deferred: Vec<(i64, Text, i64)> = Vec::new();
    loop {
        let hk = h.peek().map(|r| (r.row.task.create_time, r.row.task.task_id.clone()));
        let nk = n.peek().map(|r| (r.task.create_time, r.task.task_id.clone()));
        let (key, listed) = match (hk, nk) {
            (None, None) => break,
            (Some(hk), Some(nk)) if hk == nk => (hk, true),
            (Some(hk), nk) if nk.as_ref().is_none_or(|nk| &hk < nk) => (hk, false),
            (_, Some(nk)) => (nk, true),
            (Some(_), None) => unreachable!("matched above"),
        };
        let current = stored_at(&mut h, &key, &mut emit)?;
        if !listed {
            let Some(c) = current else { continue };
            match placed.get(&c.row.task.task_id) {
                Some(&at) => emit(HistoryRow { valid_to: Some(at.max(c.valid_from)), ..c })?,
                None => {
                    deferred.push((c.row.task.create_time, c.row.task.task_id.clone(), c.row.observed_seq));
                    emit(c)?;
                }
            }
            continue;
        }
        let row = n.take()?.expect("peeked");
        match current {
            // The same observation: the version stays, holding the row.
            Some(c) if row.observed_seq == c.row.observed_seq => {
                emit(HistoryRow { row, valid_from: c.valid_from, valid_to: None })?;
            }
            // An older one (only a foreign file gets here: a history is never derived from a
            // tasks file older than it): the stored version stands.
            Some(c) if row.observed_seq < c.row.observed_seq => emit(c)?,
            Some(c) => {
                let at = row.changed_at.max(c.valid_from);
                emit(HistoryRow { valid_to: Some(at), ..c })?;
                emit(HistoryRow { row, valid_from: at, valid_to: None })?;
                out.opened += 1;
            }
            None => {
                let at = row.changed_at;
                if had_history {
                    placed.insert(row.task.task_id.clone(), at);
                }
                emit(HistoryRow { row, valid_from: at, valid_to: None })?;
                out.opened += 1;
            }
        }
    }
    for (create_time, id, seq) in deferred {
        match placed.get(&id) {
            Some(&at) => _ = out.late_closes.insert((create_time, id, seq), at),
            None => out.orphans += 1,
        }
    }
    Ok(out)
}

/// The stored versions of the task at `key` (create_time, task_id): the closed ones go out
/// as they are; the current one, if any, is returned.
fn stored_at<E, I: Iterator<Item = Result<HistoryRow, E>>>(
    h: &mut Head<I, HistoryRow>,
    key: &(i64, Text),
    emit: &mut impl FnMut(HistoryRow) -> Result<(), E>,
) -> Result<Option<HistoryRow>, E> {
    let mut current = None;
    while h.peek().is_some_and(|r| (r.row.task.create_time, &r.row.task.task_id) == (key.0, &key.1)) {
        let v = h.take()?.expect("peeked");
        match (v.valid_to, current.take()) {
            (Some(_), prior) => {
                current = prior;
                emit(v)?;
            }
            // Two current versions (a file not written by this code): the older ends
            // where the newer begins.
            (None, Some(older)) => {
                emit(HistoryRow { valid_to: Some(v.valid_from), ..older })?;
                current = Some(v);
            }
            (None, None) => current = Some(v),
        }
    }
    Ok(current)
}

/// Applies [`Derived::late_closes`] to one row of the derived history.
pub fn close_late(mut r: HistoryRow, late: &HashMap<(i64, Text, i64), i64>) -> HistoryRow {
    if r.valid_to.is_none()
        && let Some(&at) = late.get(&(r.row.task.create_time, r.row.task.task_id.clone(), r.row.observed_seq))
    {
        r.valid_to = Some(at.max(r.valid_from));
    }
    r
}

#[cfg(test)]
#[path = "versions_tests.rs"]
mod tests;
