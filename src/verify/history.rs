//! `verify`'s checks of `task_history/` against `tasks/`, day by day: every task of a day
//! has exactly one current version, equal to its row in `tasks`; each task's versions
//! follow each other back to back (no overlap, no gap); nothing is there without a
//! `tasks` day. Streams both files side by side, holding one task's versions at a time.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::row::StoredRow;
use crate::sink::format::history_file::{HistoryRows, max_seq_of};
use crate::sink::format::reader::StoredRows;
use crate::sink::format::reader::version_of;
use crate::transform::versions::HistoryRow;

/// Problems of one kind in one file: the first one named, the rest counted.
#[derive(Default)]
struct Kinds(HashMap<&'static str, (String, u64)>);

impl Kinds {
    fn add(&mut self, kind: &'static str, example: impl FnOnce() -> String) {
        let e = self.0.entry(kind).or_insert_with(|| (example(), 0));
        e.1 += 1;
    }

    fn into_problems(self, shown: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .into_iter()
            .map(|(kind, (example, n))| {
                let more = if n > 1 { format!(" ({n} such)") } else { String::new() };
                format!("{shown}: {kind}: {example}{more}")
            })
            .collect();
        out.sort();
        out
    }
}

/// What the checks say, in `verify`'s two kinds of sentence.
pub struct Said<'a> {
    /// Broken promises.
    pub problems: &'a mut Vec<String>,
    /// Things worth knowing.
    pub notes: &'a mut Vec<String>,
}

/// Where `task_history/` stands: read after each day's `tasks` file.
#[derive(Debug, Default)]
pub struct HistoryFindings {
    /// Days with a history file.
    pub days: usize,
    /// Versions read.
    pub versions: u64,
    /// Days of `tasks/` without a history file (written before `storage.history` was on).
    pub missing: Vec<String>,
}

impl HistoryFindings {
    /// Adds one day: its history file at `history` (fetched or local; `None`: there is
    /// none), checked against its `tasks` file; `shown` names the history file.
    pub fn day(&mut self, date: &str, tasks: &Path, history: Option<&Path>, shown: &str, f: &mut Said) {
        let Some(history) = history else {
            self.missing.push(date.to_string());
            return;
        };
        self.days += 1;
        match check_day(tasks, history, shown) {
            Ok((versions, problems, lag)) => {
                self.versions += versions;
                f.problems.extend(problems);
                f.notes.extend(lag);
            }
            Err(e) => f.problems.push(format!("{shown}: {e}")),
        }
    }

    /// The notes that close the check.
    pub fn finish(&self, f: &mut Said) {
        if !self.missing.is_empty() {
            let (first, n) = (&self.missing[0], self.missing.len());
            f.notes.push(format!(
                "task_history/ has no file for {n} day(s) of tasks/, first {first}: written while storage.history was off or by an older tasksync; each is seeded from its tasks file the next time the day is written"
            ));
        }
    }
}

/// Checks one day's history file (`shown` names it) against its `tasks` file. Returns the
/// versions read, the problems, and a note when the history lags the `tasks` file (a
/// window between its two files, or interrupted there: the next write of the day catches
/// it up), in which case it is not compared with `tasks`. A history ahead of its `tasks`
/// file is a problem: nothing will bring them together.
pub fn check_day(tasks: &Path, history: &Path, shown: &str) -> Result<(u64, Vec<String>, Option<String>), String> {
    let mut h = HistoryRows::open(history).map_err(|e| e.to_string())?;
    let version = version_of(tasks).map_err(|e| e.to_string())?;
    let lag = match h.derived_from() {
        Some(v) if v == version => None,
        // Writes leave such a history as it is (rolling it back would lose versions), so
        // it never converges by itself.
        Some(v) if max_seq_of(v) > max_seq_of(&version) => {
            return Err(format!(
                "derived from tasks version {v}, newer than the day's tasks file ({version}): tasks/ was restored or replaced without task_history/; writes leave this history as it is: move it aside and the next write of the day starts it afresh from tasks/"
            ));
        }
        from => Some(format!(
            "{shown}: derived from tasks version {}, the day's tasks file is {version}: it lags (a window between its two files, or interrupted there; the next write of the day catches it up)",
            from.unwrap_or("(none)")
        )),
    };
    let mut t = TasksSide { rows: StoredRows::open(tasks).map_err(|e| e.to_string())?, held: None };
    let mut kinds = Kinds::default();
    let (mut versions, mut split, mut chains) = (0u64, HashSet::new(), Vec::new());
    let mut group: Vec<HistoryRow> = Vec::new();
    loop {
        let row = h.next_row().map_err(|e| e.to_string())?;
        let same = |r: &HistoryRow| group.last().is_some_and(|g| key(&g.row) == key(&r.row));
        if let Some(r) = row.as_ref().filter(|r| same(r) || group.is_empty()) {
            group.push(r.clone());
            continue;
        }
        if !group.is_empty() {
            versions += group.len() as u64;
            let id = group[0].row.task.task_id.to_string();
            // A task whose versions are at several places (moved within the day) is checked
            // whole at the end: one place alone may show a gap the other place fills.
            chains.extend(check_chain(&group).into_iter().map(|kind| (id.clone(), kind)));
            let current = group.last().filter(|v| v.valid_to.is_none());
            if current.is_none() {
                split.insert(id);
            }
            if lag.is_none() {
                match_tasks(&mut t, &group[0].row, current, &mut kinds)?;
            }
        }
        group.clear();
        match row {
            Some(r) => group.push(r),
            None => break,
        }
    }
    if lag.is_none() {
        while let Some(r) = t.next_before((i64::MAX, ""))? {
            kinds.add("a task of the day has no current version", || format!("task_id {}", r.task.task_id));
        }
    }
    for (id, kind) in chains.into_iter().filter(|(id, _)| !split.contains(id)) {
        kinds.add(kind, || format!("task_id {id}"));
    }
    check_split(history, &split, &mut kinds)?;
    Ok((versions, kinds.into_problems(shown), lag))
}

fn key(r: &StoredRow) -> (i64, &str) {
    (r.task.create_time, r.task.task_id.as_str())
}

/// One task's versions, in observation order: back to back, one current at most, last.
/// Returns the kinds of problem found.
fn check_chain(versions: &[HistoryRow]) -> Vec<&'static str> {
    let mut found = Vec::new();
    if versions.iter().any(|v| v.valid_to.is_some_and(|to| to < v.valid_from)) {
        found.push("a version ends before it begins");
    }
    for pair in versions.windows(2) {
        match pair[0].valid_to {
            None => found.push("more than one current version"),
            Some(to) if to < pair[1].valid_from => found.push("a gap between consecutive versions"),
            Some(to) if to > pair[1].valid_from => found.push("consecutive versions overlap"),
            Some(_) => {}
        }
    }
    found
}

/// The `tasks` file read beside the history, one row looked at ahead.
struct TasksSide {
    /// The rows not yet looked at.
    rows: StoredRows,
    /// The row looked at and not yet matched.
    held: Option<StoredRow>,
}

impl TasksSide {
    fn next_before(&mut self, end: (i64, &str)) -> Result<Option<StoredRow>, String> {
        if self.held.is_none() {
            self.held = self.rows.next_before(i64::MAX).map_err(|e| e.to_string())?;
        }
        if self.held.as_ref().is_some_and(|r| key(r) < end) { Ok(self.held.take()) } else { Ok(None) }
    }
}

/// The `tasks` rows up to `at`'s place: each before it has no current version, the one at
/// it must equal `current`.
fn match_tasks(
    t: &mut TasksSide,
    at: &StoredRow,
    current: Option<&HistoryRow>,
    kinds: &mut Kinds,
) -> Result<(), String> {
    let (ct, id) = key(at);
    while let Some(r) = t.next_before((ct, id))? {
        kinds.add("a task of the day has no current version", || format!("task_id {}", r.task.task_id));
    }
    let here = t.held.as_ref().is_some_and(|r| key(r) == (ct, id));
    match (current, here) {
        (Some(c), true) if Some(&c.row) == t.held.as_ref() => {}
        (Some(_), true) => {
            kinds.add("the current version differs from the task's row in tasks/", || format!("task_id {id}"))
        }
        (Some(_), false) => kinds.add("a current version has no row in tasks/", || format!("task_id {id}")),
        (None, true) => kinds.add("a task of the day has no current version", || format!("task_id {id}")),
        (None, false) => {}
    }
    if here {
        t.held = None;
    }
    Ok(())
}

/// Tasks whose versions are in more than one place (a create_time corrected within the
/// day): read again, together, in observation order.
fn check_split(history: &Path, split: &HashSet<String>, kinds: &mut Kinds) -> Result<(), String> {
    if split.is_empty() {
        return Ok(());
    }
    let mut by_id: HashMap<String, Vec<HistoryRow>> = HashMap::new();
    let mut rows = HistoryRows::open(history).map_err(|e| e.to_string())?;
    while let Some(r) = rows.next_row().map_err(|e| e.to_string())? {
        if split.contains(r.row.task.task_id.as_str()) {
            by_id.entry(r.row.task.task_id.to_string()).or_default().push(r);
        }
    }
    for (id, mut versions) in by_id {
        versions.sort_by_key(|v| v.row.observed_seq);
        let current = versions.iter().filter(|v| v.valid_to.is_none()).count();
        if current != 1 || versions.last().is_some_and(|v| v.valid_to.is_some()) {
            kinds.add("a task whose versions moved within the day has no single last current version", || {
                format!("task_id {id}")
            });
        }
        for kind in check_chain(&versions) {
            kinds.add(kind, || format!("task_id {id}"));
        }
    }
    Ok(())
}
