//! The stage step: one partition rewritten while its window is walked. Observations arrive
//! leaf by leaf, in time order, and stream through the merge into a staged file, so memory
//! stays bounded by a leaf and a write batch, never by the size of a day.
//!
//! The stored file is read twice, both times as a stream sorted by (create_time,
//! task_id): a *compare* cursor finds the stored rows of each leaf's range to compute
//! what changed ([`delta`]); a *copy* cursor, opened only once something has changed,
//! lays the accumulated changes over the stored rows ([`overlay`]) into the staged file.
//! A window that changes nothing writes nothing.
//!
//! The call order is in the types: [`Opening`] (what the rewrite will do is fixed here,
//! before the first leaf) -> [`Rewrite`] (the leaves) -> [`Ended`] (the window's end
//! decided whether missing rows may be marked deleted) -> [`Ended::finish`], which hands
//! the staged files to the publish step (`publish.rs`).

use std::sync::Arc;

use super::WindowCounts;
use super::derive::{Alongside, Day, DayHistory};
use super::patch::{Ends, Written, apply, count_file};
use super::publish::StagedDay;
use crate::plan::Window;
use crate::row::{StoredRow, TaskRow};
use crate::sink::SinkError;
use crate::sink::format::reader::{BATCH_ROWS, StoredRows};
use crate::sink::format::writer::FileWriter;
use crate::sink::store::{Base, Staged, Store};
use crate::state::DayCounts;
use crate::transform::merge::{Observed, delta, overlay};

/// What rewriting a partition did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Its figures: `new`, `changed`, `files_written`, `deleted`, `moved`, `versions` (the
    /// walk adds its own, the commit `rejects`).
    pub counts: WindowCounts,
    /// The partition's rows as written, per minute (only when a file was written, or
    /// recounted), for the reconciliation's counts.
    pub day: Option<DayCounts>,
    /// The version of the `tasks` file the day's history is derived from once this
    /// window is committed, when the window looked (`None`: not looked at, unreadable, or
    /// newer than the tasks file). Object storage skips the next quiet window's GET of the
    /// history only while the day's `tasks` object still has this version.
    pub history_of: Option<String>,
}

/// The staged file being written, and the copy cursor feeding it.
struct Output {
    /// The staging names of the new file; dropping it unpublished removes them.
    staged: Staged,
    /// The Parquet writer of the staged file.
    writer: FileWriter,
    /// The copy cursor: the stored rows, read once more to lay the changes over.
    copy: StoredRows,
}

/// One partition being merged with the leaves of one window, in any of its three states.
/// The caller holds the partition's lock from [`Opening::open`] to the checkpoint (a
/// window cancelled meanwhile may go on staging after its lock is gone: what it staged is
/// never published, and removed when dropped).
struct Merge {
    /// The store the partition lives in, which stages its files.
    store: Arc<Store>,
    /// The partition's UTC day (`YYYY-MM-DD`), as in `create_date=`.
    date: String,
    /// When and in which order this window's observations were made.
    seen: Observed,
    /// The compare cursor over the stored file: each leaf's stored rows, to compute what changed.
    compare: StoredRows,
    /// The stored version merged with (a fetched copy for object storage, with its ETag).
    base: Base,
    /// Opened at the first flush; `None` while nothing has changed.
    out: Option<Output>,
    /// Changed and new rows not yet written, sorted, all before `done_to`.
    pending: Vec<StoredRow>,
    /// End of the last leaf merged: stored rows before it are final for this window.
    done_to: i64,
    /// What the merge did so far.
    outcome: Outcome,
    /// What the listings showed about stored rows, for the window's end to decide.
    ends: Ends,
    /// Rows written so far, counted as they go.
    written: Written,
    /// Count the stored file when the window changes nothing (a reconciliation's window,
    /// whose recorded counts may describe another version of the file).
    recount: bool,
    /// The day's first history, written beside its first `tasks` file.
    alongside: Option<Alongside>,
}

/// A partition opened for one window, before its first leaf.
pub struct Opening(Merge);

/// A partition taking its window's leaves.
pub struct Rewrite(Merge);

/// A partition whose window has ended: every leaf merged, the end decided.
pub struct Ended {
    /// The merge.
    merge: Merge,
    /// Whether stored rows missing from the listings may be marked deleted: not when the
    /// window listed only part of its day (a task may have moved to a part not listed),
    /// unless counts showed the rest of the day matches (a reconciliation).
    may_delete: bool,
}

impl Opening {
    /// Opens partition `date`, as it stands in `base` (see [`Store::base`]).
    pub fn open(store: Arc<Store>, date: &str, base: Base) -> Result<Opening, SinkError> {
        let compare = StoredRows::open(&base.path)?;
        Ok(Opening(Merge {
            store,
            date: date.to_string(),
            seen: Observed { at: 0, seq: 0 },
            compare,
            base,
            out: None,
            pending: Vec::new(),
            done_to: i64::MIN,
            outcome: Outcome::default(),
            ends: Ends::default(),
            written: Written::default(),
            recount: false,
            alongside: None,
        }))
    }

    /// Opens the local partition `date` and stamps its changes with `seen` (unit tests).
    #[cfg(test)]
    pub fn local(store: Arc<Store>, date: &str, seen: Observed) -> Result<Rewrite, SinkError> {
        let base = store.local_base(date);
        Ok(Opening::open(store, date, base)?.observe_as(seen))
    }

    /// The newest observation the stored partition holds ([`StoredRows::max_observed_seq`]):
    /// the observation this window is stamped with must be numbered above it.
    pub fn stored_max_seq(&self) -> i64 {
        self.0.compare.max_observed_seq()
    }

    /// Whether the partition had a stored file when opened.
    pub fn has_stored_file(&self) -> bool {
        self.0.compare.exists()
    }

    /// Writes the day's first history beside its first `tasks` file, when neither exists
    /// yet (see [`Alongside`]); `base` is the day's stored history.
    pub fn with_history_alongside(mut self, base: Base) -> Result<Opening, SinkError> {
        if !self.0.compare.exists() {
            self.0.alongside = Alongside::open(&self.0.store, &self.0.date, base)?;
        }
        Ok(self)
    }

    /// Counts the stored partition even when the window changes nothing, so that a
    /// reconciliation's counts are right again for a file whose recorded counts were wrong
    /// (another writer's state, a crash between upload and checkpoint on object storage).
    pub fn recount_if_unchanged(mut self) -> Opening {
        self.0.recount = true;
        self
    }

    /// Stamps this window's changes with `seen`; the leaves may come.
    pub fn observe_as(mut self, seen: Observed) -> Rewrite {
        self.0.seen = seen;
        Rewrite(self.0)
    }
}

impl Rewrite {
    /// Merges the observations of one leaf. Leaves must come in time order and not overlap;
    /// every row of `rows` must lie in `leaf`. Returns the task ids a newer observation had
    /// already stored, which this one left alone.
    pub fn add(&mut self, leaf: Window, rows: Vec<TaskRow>) -> Result<Vec<crate::row::Text>, SinkError> {
        let m = &mut self.0;
        debug_assert!(leaf.start >= m.done_to, "leaves come in time order");
        while m.compare.next_before(leaf.start)?.is_some() {}
        let mut stored = Vec::new();
        while let Some(row) = m.compare.next_before(leaf.end)? {
            stored.push(row);
        }
        let d = delta(&stored, rows, m.seen);
        m.outcome.counts.new += d.new as u64;
        m.outcome.counts.changed += d.changed as u64;
        m.pending.extend(d.rows);
        m.ends.missing.extend(d.missing);
        m.ends.compared += stored.len();
        m.ends.moved.extend(d.moved);
        if m.compare.exists() {
            m.ends.new_ids.extend(d.new_ids);
        }
        m.done_to = leaf.end;
        // Without a stored file there is nothing to re-read and nothing to wait for.
        if m.pending.len() >= BATCH_ROWS || (!m.compare.exists() && !m.pending.is_empty()) {
            m.flush()?;
        }
        Ok(d.stale)
    }

    /// The window's end: every leaf merged. `may_delete` says whether stored rows the
    /// listings no longer had may be marked deleted, which only the whole walk can tell.
    pub fn end(self, may_delete: bool) -> Ended {
        Ended { merge: self.0, may_delete }
    }
}

impl Ended {
    /// The version of the stored `tasks` file merged with (`rows:max_seq`).
    pub fn stored_version(&self) -> String {
        self.merge.compare.version()
    }

    /// Whether finishing may write a new file: anything changed, or stored rows may be
    /// dropped or marked.
    pub fn may_write(&self) -> bool {
        let m = &self.merge;
        m.out.is_some() || !m.pending.is_empty() || m.ends.may_patch(self.may_delete)
    }

    /// Whether the day's history is being written beside its `tasks` file.
    pub fn writes_history_alongside(&self) -> bool {
        self.merge.alongside.is_some()
    }

    /// Stages the window's files: when anything changed, the rest of the stored rows are
    /// written and the staged file finished (footer, fsync); then the day's history,
    /// derived from it (`history`, the history's stored version; `None` with history off or
    /// when it need not be looked at). Nothing is published here.
    pub fn finish(self, history: Option<Base>) -> Result<(Outcome, StagedDay), SinkError> {
        let Ended { mut merge, may_delete } = self;
        let staged = merge.finish_tasks(may_delete)?;
        let derived = match (merge.alongside.take(), history) {
            // A fresh day with no row writes neither file (dropping `alongside` removes its
            // staged file); one with rows has nothing to drop or mark, so its file is the
            // one written.
            (Some(alongside), _) if staged.is_some() => {
                let (history, base, versions) = alongside.finish(&merge.written.counts.version)?;
                merge.outcome.counts.versions = versions;
                merge.outcome.history_of = Some(merge.written.counts.version.clone());
                Some((history, base))
            }
            (Some(_), _) | (None, None) => None,
            (None, Some(base)) => merge.derive_history(base, staged.as_ref())?,
        };
        let tasks = staged.map(|s| (s, merge.base));
        Ok((merge.outcome, StagedDay { date: merge.date, tasks, history: derived }))
    }
}

impl Merge {
    /// Writes every stored row before `done_to`, with the pending changes laid over them.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.out.is_none() {
            let staged = self.store.stage(&self.date);
            let writer = FileWriter::create(&staged.file)?;
            let copy = StoredRows::open(&self.base.path)?;
            self.out = Some(Output { staged, writer, copy });
        }
        let out = self.out.as_mut().expect("opened above");
        let (copy, done_to) = (&mut out.copy, self.done_to);
        let mut failed = None;
        let stored = std::iter::from_fn(|| {
            copy.next_before(done_to).unwrap_or_else(|e| {
                failed = Some(e);
                None
            })
        });
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        for row in overlay(stored, std::mem::take(&mut self.pending)) {
            self.written.add(&row);
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                write_both(&mut out.writer, self.alongside.as_mut(), &out.staged.file, &batch)?;
                batch.clear();
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if !batch.is_empty() {
            write_both(&mut out.writer, self.alongside.as_mut(), &out.staged.file, &batch)?;
        }
        Ok(())
    }

    /// The partition's new file, staged and fsynced, when anything changed; the outcome's
    /// figures and counts set.
    fn finish_tasks(&mut self, may_delete: bool) -> Result<Option<Staged>, SinkError> {
        let decided = std::mem::take(&mut self.ends).decide(&self.base.path, may_delete, &self.date)?;
        let c = &mut self.outcome.counts;
        (c.moved, c.deleted, c.new) =
            (c.moved + decided.moved, c.deleted + decided.deleted, c.new.saturating_sub(decided.not_new));
        if self.out.is_none() && self.pending.is_empty() && decided.patches.is_empty() {
            if self.recount {
                self.outcome.day = Some(count_file(&self.base.path)?);
            }
            return Ok(None);
        }
        let staged = if self.out.is_none() && self.pending.is_empty() {
            None
        } else {
            self.done_to = i64::MAX;
            self.flush()?;
            let Output { staged, writer, .. } = self.out.take().expect("flush opened it");
            writer.finish()?;
            Some(staged)
        };
        let staged = if decided.patches.is_empty() {
            staged.expect("something changed")
        } else {
            let from = staged.as_ref().map_or(self.base.path.clone(), |s| s.file.clone());
            apply(&self.store, &self.date, &from, &decided.patches, self.seen, &mut self.written)?
        };
        self.written.counts.version =
            crate::sink::format::reader::file_version(self.written.rows, self.written.max_seq);
        self.outcome.counts.files_written = 1;
        self.outcome.day = Some(self.written.counts.clone());
        Ok(Some(staged))
    }

    /// The day's new history derived from its stored one (`base`) and the window's new
    /// `tasks` file, if any (see [`Day::derive`]). An unreadable history does not stop the
    /// day's tasks: it waits, loudly, until the file is moved aside (the next write then
    /// seeds a new one from `tasks/`).
    fn derive_history(&mut self, base: Base, new_tasks: Option<&Staged>) -> Result<Option<(Staged, Base)>, SinkError> {
        let new_tasks = new_tasks.map(|s| (s.file.as_path(), self.written.counts.version.as_str()));
        let version = self.compare.version();
        let day = Day { store: &self.store, date: &self.date, tasks: &self.base.path, version: &version };
        match day.derive(base, new_tasks) {
            Err(SinkError::Unreadable { path, message }) => {
                tracing::error!(
                    file = %path.display(), reason = %message,
                    "The day's history file cannot be read; writing tasks/ without it: move the file aside to start the day's history afresh (docs/exactness.md, \"A partition file that cannot be read\")"
                );
                Ok(None)
            }
            Err(e) => Err(e),
            Ok(DayHistory::Ahead) => Ok(None),
            Ok(DayHistory::Current(version)) => {
                self.outcome.history_of = Some(version);
                Ok(None)
            }
            Ok(DayHistory::Staged { staged, base, opened, current }) => {
                (self.outcome.counts.versions, self.outcome.history_of) = (opened, Some(current));
                Ok(Some((staged, base)))
            }
        }
    }
}

/// One batch of rows into the `tasks` file and, for a fresh day, its history, which shares
/// the batch's columns.
fn write_both(
    tasks: &mut FileWriter,
    history: Option<&mut Alongside>,
    path: &std::path::Path,
    rows: &[StoredRow],
) -> Result<(), SinkError> {
    let batch = crate::sink::format::schema::to_batch(rows)
        .map_err(|e| crate::sink::format::writer::parquet_error("write", path, e))?;
    tasks.write_batch(&batch)?;
    match history {
        Some(h) => h.write(&batch),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
