//! One partition rewritten while its window is walked: observations arrive leaf by leaf,
//! in time order, and stream through the merge into a staged file, so memory stays
//! bounded by a leaf and a write batch, never by the size of a day.
//!
//! The stored file is read twice, both times as a stream sorted by (create_time,
//! task_id): a *compare* cursor finds the stored rows of each leaf's range to compute
//! what changed ([`delta`]); a *copy* cursor, opened only once something has changed,
//! lays the accumulated changes over the stored rows ([`overlay`]) into the staged file.
//! A window that changes nothing writes nothing; the commit itself (rename, fsync) is the
//! protocol of `writer.rs`, and the caller checkpoints only after [`PartitionMerge::finish`].

use std::sync::Arc;

use super::derive::{Alongside, Day, DayHistory};
use crate::plan::Window;
use crate::row::{StoredRow, TaskRow};
use crate::sink::SinkError;
use crate::sink::format::reader::{BATCH_ROWS, StoredRows, file_version};
use crate::sink::format::writer::FileWriter;
use crate::sink::store::{Base, Staged, Store, Upload};
use crate::state::counts::DayCounts;
use crate::transform::merge::{Observed, delta, overlay};

/// What rewriting a partition did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Task ids not in the partition before.
    pub new: usize,
    /// Task ids whose content changed.
    pub changed: usize,
    /// Whether a new file replaced (or created) the partition's.
    pub written: bool,
    /// Stored tasks a complete listing no longer had, now marked `deleted_at`.
    pub deleted: usize,
    /// Stored tasks listed again under another create_time of the same day: their old row
    /// was removed, so the partition keeps one row per task_id.
    pub moved: usize,
    /// The partition's rows as written, per minute (only when `written`), for the
    /// reconciliation's counts.
    pub counts: Option<DayCounts>,
    /// Rejects recorded for the first time (set by the commit, which knows them).
    pub rejects: usize,
    /// Versions opened in the day's history (`task_history/`).
    pub versions: u64,
    /// The version of the `tasks` file the day's history is derived from once this
    /// window is committed, when the window looked (`None`: not looked at, unreadable, or
    /// newer than the tasks file). Object storage skips the next quiet window's GET of the
    /// history only while the day's `tasks` object still has this version.
    pub history_of: Option<String>,
}

/// The PUTs a window's commit makes on object storage, in this order: `tasks/` first, so
/// that a history never runs ahead of its day's `tasks` file.
#[derive(Default)]
pub struct Uploads {
    /// The partition's new `tasks` file.
    pub tasks: Option<Upload>,
    /// The day's new history.
    pub history: Option<Upload>,
}

/// The staged file being written, and the copy cursor feeding it.
struct Output {
    /// The staging names of the new file; dropping it unrenamed removes them.
    staged: Staged,
    /// The Parquet writer of the staged file.
    writer: FileWriter,
    /// The copy cursor: the stored rows, read once more to lay the changes over.
    copy: StoredRows,
}

/// One partition being merged with the leaves of one window. The caller holds the
/// partition's lock from [`PartitionMerge::open`] to [`PartitionMerge::finish`].
pub struct PartitionMerge {
    /// The output the partition lives in, which stages and commits its files.
    sink: Arc<Store>,
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
    /// What the merge did so far; returned by [`PartitionMerge::finish`].
    outcome: Outcome,
    /// Keys of stored rows that complete listings of their leaves no longer had (see
    /// [`Delta::missing`]).
    missing: Vec<(i64, crate::row::Text)>,
    /// Stored rows the listings were compared with: what a share of deletions is of.
    compared: usize,
    /// Count the stored file when the window changes nothing (a reconciliation's window,
    /// whose recorded counts may describe another version of the file).
    recount: bool,
    /// Task ids with no stored row in the range they were listed in, and their
    /// create_time, kept only when there is a stored file (a fresh partition has nothing
    /// to move or delete): a stored row of one of them elsewhere in the partition is its
    /// old place, removed at the end, so the partition keeps one row per task_id.
    new_ids: std::collections::HashMap<crate::row::Text, i64>,
    /// Whether stored rows missing from the listings may be marked deleted: not when the
    /// window listed only part of its day (a task may have moved to a part not listed),
    /// unless counts showed the rest of the day matches (a reconciliation).
    may_delete: bool,
    /// Keys of stored rows whose task was listed under another create_time in the same
    /// leaf: dropped at the end (see [`Delta::moved`]).
    moved: Vec<(i64, crate::row::Text)>,
    /// Rows written so far, counted as they go.
    counts: DayCounts,
    /// Rows written so far: half of the file's version (`rows:max_seq`).
    rows_written: u64,
    /// Newest observation among the rows written: the other half of the file's version.
    max_seq_written: i64,
    /// The day's first history, written beside its first `tasks` file.
    alongside: Option<Alongside>,
}

impl PartitionMerge {
    /// Starts merging into the local partition `date`, stamping changes with `seen`.
    #[cfg(test)]
    pub fn open(sink: Arc<Store>, date: &str, seen: Observed) -> Result<PartitionMerge, SinkError> {
        let base = sink.local_base(date);
        let mut merge = PartitionMerge::open_stored(sink, date, base)?;
        merge.observe_as(seen);
        Ok(merge)
    }

    /// The newest observation the stored partition holds ([`StoredRows::max_observed_seq`]):
    /// the observation this merge is stamped with must be numbered above it.
    pub fn stored_max_seq(&self) -> i64 {
        self.compare.max_observed_seq()
    }

    /// The version of the stored `tasks` file merged with (`rows:max_seq`).
    pub fn stored_version(&self) -> String {
        self.compare.version()
    }

    /// Whether finishing may write a new file: anything changed, or stored rows may be
    /// dropped or marked (decided at the end).
    pub fn may_write(&self) -> bool {
        self.out.is_some()
            || !self.pending.is_empty()
            || !self.moved.is_empty()
            || !self.new_ids.is_empty()
            || (self.may_delete && !self.missing.is_empty())
    }

    /// Keeps stored rows that the listings no longer had as they are, rather than marking
    /// them deleted (see `may_delete`).
    pub fn keep_missing(&mut self) {
        self.may_delete = false;
    }

    /// Counts the stored partition even when the window changes nothing, so that a
    /// reconciliation's counts are right again for a file whose recorded counts were wrong
    /// (another writer's state, a crash between upload and checkpoint on object storage).
    pub fn recount_if_unchanged(&mut self) {
        self.recount = true;
    }

    /// Sets the observation this merge's changes are stamped with, before the first leaf.
    pub fn observe_as(&mut self, seen: Observed) {
        debug_assert!(self.outcome == Outcome::default() && self.pending.is_empty(), "before the first leaf");
        self.seen = seen;
    }

    /// Opens partition `date`, as it stands in `base` (see [`Store::base`]), for merging;
    /// [`PartitionMerge::observe_as`] must follow.
    pub fn open_stored(sink: Arc<Store>, date: &str, base: Base) -> Result<PartitionMerge, SinkError> {
        let seen = Observed { at: 0, seq: 0 };
        let compare = StoredRows::open(&base.path)?;
        Ok(PartitionMerge {
            sink,
            date: date.to_string(),
            seen,
            compare,
            base,
            out: None,
            pending: Vec::new(),
            done_to: i64::MIN,
            outcome: Outcome::default(),
            missing: Vec::new(),
            compared: 0,
            recount: false,
            new_ids: Default::default(),
            may_delete: true,
            moved: Vec::new(),
            counts: DayCounts::empty(),
            rows_written: 0,
            max_seq_written: 0,
            alongside: None,
        })
    }

    /// Merges the observations of one leaf. Leaves must come in time order and not overlap;
    /// every row of `rows` must lie in `leaf`. Returns the task ids a newer observation had
    /// already stored, which this one left alone.
    pub fn add(&mut self, leaf: Window, rows: Vec<TaskRow>) -> Result<Vec<crate::row::Text>, SinkError> {
        debug_assert!(leaf.start >= self.done_to, "leaves come in time order");
        while self.compare.next_before(leaf.start)?.is_some() {}
        let mut stored = Vec::new();
        while let Some(row) = self.compare.next_before(leaf.end)? {
            stored.push(row);
        }
        let d = delta(&stored, rows, self.seen);
        self.outcome.new += d.new;
        self.outcome.changed += d.changed;
        self.pending.extend(d.rows);
        self.missing.extend(d.missing);
        self.compared += stored.len();
        self.moved.extend(d.moved);
        if self.compare.exists() {
            self.new_ids.extend(d.new_ids);
        }
        self.done_to = leaf.end;
        // Without a stored file there is nothing to re-read and nothing to wait for.
        if self.pending.len() >= BATCH_ROWS || (!self.compare.exists() && !self.pending.is_empty()) {
            self.flush()?;
        }
        Ok(d.stale)
    }

    /// Writes every stored row before `done_to`, with the pending changes laid over them.
    fn flush(&mut self) -> Result<(), SinkError> {
        if self.out.is_none() {
            let staged = self.sink.stage(&self.date);
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
        let mut tally =
            Tally { counts: &mut self.counts, rows: &mut self.rows_written, max_seq: &mut self.max_seq_written };
        for row in overlay(stored, std::mem::take(&mut self.pending)) {
            tally.add(&row);
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

    /// Whether the partition had a stored file when opened.
    pub fn has_stored_file(&self) -> bool {
        self.compare.exists()
    }

    /// Writes the day's first history beside its first `tasks` file, when neither exists
    /// yet (see [`Alongside`]); `base` is the day's stored history. Returns whether it will.
    pub fn write_history_alongside(&mut self, base: Base) -> Result<bool, SinkError> {
        if self.compare.exists() || self.out.is_some() {
            return Ok(false);
        }
        self.alongside = Alongside::open(&self.sink, &self.date, base)?;
        Ok(self.alongside.is_some())
    }

    /// Whether the day's history is already being written beside its `tasks` file.
    pub fn writes_history_alongside(&self) -> bool {
        self.alongside.is_some()
    }

    /// Finishes the window: when anything changed, writes the rest of the stored rows,
    /// then commits the staged file by the protocol of `writer.rs`, and after it the day's
    /// history derived from it (`history`, the history's stored version; `None` with
    /// history off). On object storage it goes up to the PUTs, which the caller makes in
    /// that order: the returned [`Uploads`].
    pub fn finish(mut self, history: Option<Base>) -> Result<(Outcome, Uploads), SinkError> {
        let staged = self.finish_tasks()?;
        let derived = match (self.alongside.take(), history) {
            // A fresh day with no row writes neither file (dropping `alongside` removes its
            // staged file); one with rows has nothing to drop or mark, so its file is the
            // one written.
            (Some(alongside), _) if staged.is_some() => {
                let (history, base, versions) = alongside.finish(&self.counts.version)?;
                self.outcome.versions = versions;
                self.outcome.history_of = Some(self.counts.version.clone());
                Some((history, base))
            }
            (Some(_), _) | (None, None) => None,
            (None, Some(base)) => self.derive_history(base, staged.as_ref())?,
        };
        let tasks = match staged {
            Some(staged) => self.sink.commit(&self.date, staged, &self.base)?,
            None => None,
        };
        let history = match derived {
            Some((staged, base)) => {
                // On object storage the point is reached between the two PUTs (`sync/commit.rs`).
                if !self.sink.is_remote() {
                    crate::crash::point("between_tasks_and_history");
                }
                self.sink.commit_history(&self.date, staged, &base)?
            }
            None => None,
        };
        Ok((self.outcome, Uploads { tasks, history }))
    }

    /// The day's new history derived from its stored one (`base`) and the window's new
    /// `tasks` file, if any (see `history_file::Day::derive`). An unreadable history does
    /// not stop the day's tasks: it waits, loudly, until the file is moved aside (the next
    /// write then seeds a new one from `tasks/`).
    fn derive_history(&mut self, base: Base, new_tasks: Option<&Staged>) -> Result<Option<(Staged, Base)>, SinkError> {
        let new_tasks = new_tasks.map(|s| (s.file.as_path(), self.counts.version.as_str()));
        let version = self.stored_version();
        let day = Day { sink: &self.sink, date: &self.date, tasks: &self.base.path, version: &version };
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
                (self.outcome.versions, self.outcome.history_of) = (opened, Some(current));
                Ok(Some((staged, base)))
            }
        }
    }

    /// The partition's new file, staged and fsynced, when anything changed; the outcome's
    /// counts set.
    fn finish_tasks(&mut self) -> Result<Option<Staged>, SinkError> {
        let patches = self.patches()?;
        if self.out.is_none() && self.pending.is_empty() && patches.is_empty() {
            if self.recount {
                self.outcome.counts = Some(count_file(&self.base.path)?);
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
        let staged = if patches.is_empty() {
            self.counts.version = file_version(self.rows_written, self.max_seq_written);
            staged.expect("something changed")
        } else {
            let from = staged.as_ref().map_or(self.base.path.clone(), |s| s.file.clone());
            self.patch(&from, &patches)?
        };
        self.outcome.written = true;
        self.outcome.counts = Some(self.counts.clone());
        Ok(Some(staged))
    }

    /// What the window's end decides: the old rows of tasks listed under another
    /// create_time of the day go; rows its listings no longer had are marked deleted
    /// (when `may_delete`), unless their task was listed elsewhere (moved), and unless
    /// that would be most of what was compared (see [`crate::transform::merge::believable_deletions`]).
    fn patches(&mut self) -> Result<std::collections::HashMap<(i64, crate::row::Text), Patch>, SinkError> {
        let mut patches = std::collections::HashMap::new();
        for key in std::mem::take(&mut self.moved) {
            self.outcome.moved += 1;
            patches.insert(key, Patch::Drop);
        }
        if !self.new_ids.is_empty() {
            // One more read of the stored file, only when a window lists tasks new to it.
            let mut stored = StoredRows::open(&self.base.path)?;
            let mut matched = std::collections::HashSet::new();
            while let Some(row) = stored.next_before(i64::MAX)? {
                let id = &row.task.task_id;
                if self.new_ids.get(id).is_some_and(|&c| c != row.task.create_time) {
                    if matched.insert(id.clone()) {
                        self.outcome.moved += 1;
                        self.outcome.new = self.outcome.new.saturating_sub(1);
                    }
                    patches.insert((row.task.create_time, id.clone()), Patch::Drop);
                }
            }
        }
        let deleted: Vec<_> =
            std::mem::take(&mut self.missing).into_iter().filter(|(_, id)| !self.new_ids.contains_key(id)).collect();
        if !self.may_delete || deleted.is_empty() {
            return Ok(patches);
        }
        if !crate::transform::merge::believable_deletions(deleted.len(), self.compared) {
            tracing::warn!(
                partition = %self.date, missing = deleted.len(), compared = self.compared,
                "Not marking tasks deleted: a listing that lost most of what it was compared with looks like a fault of the API; the next reconciliation lists it again"
            );
            return Ok(patches);
        }
        self.outcome.deleted += deleted.len();
        patches.extend(deleted.into_iter().map(|key| (key, Patch::MarkDeleted)));
        Ok(patches)
    }

    /// Rewrites `from` (the staged file, or the stored one when nothing else changed) with
    /// `patches` applied, into a new staged file, counting its rows afresh.
    fn patch(
        &mut self,
        from: &std::path::Path,
        patches: &std::collections::HashMap<(i64, crate::row::Text), Patch>,
    ) -> Result<Staged, SinkError> {
        let staged = self.sink.stage(&self.date);
        let mut writer = FileWriter::create(&staged.file)?;
        let mut input = StoredRows::open(from)?;
        (self.counts, self.rows_written, self.max_seq_written) = (DayCounts::empty(), 0, 0);
        let mut tally =
            Tally { counts: &mut self.counts, rows: &mut self.rows_written, max_seq: &mut self.max_seq_written };
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while let Some(row) = input.next_before(i64::MAX)? {
            let row = match patches.get(&(row.task.create_time, row.task.task_id.clone())) {
                Some(Patch::Drop) => continue,
                Some(Patch::MarkDeleted) => crate::transform::merge::mark_deleted(row, self.seen),
                None => row,
            };
            tally.add(&row);
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                writer.write(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            writer.write(&batch)?;
        }
        writer.finish()?;
        self.counts.version = file_version(self.rows_written, self.max_seq_written);
        Ok(staged)
    }
}

/// A change decided at a window's end, applied to one stored row by its key.
enum Patch {
    /// Its task moved within the day and was written under its new create_time.
    Drop,
    /// Its task was deleted upstream: the row marked.
    MarkDeleted,
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

/// Counts rows as they are written, for [`DayCounts`] and the file's version.
struct Tally<'a> {
    /// The per-minute counts being built.
    counts: &'a mut DayCounts,
    /// Rows counted.
    rows: &'a mut u64,
    /// Newest `observed_seq` among the rows counted.
    max_seq: &'a mut i64,
}

impl Tally<'_> {
    fn add(&mut self, row: &StoredRow) {
        self.counts.add(row);
        *self.rows += 1;
        *self.max_seq = (*self.max_seq).max(row.observed_seq);
    }
}

/// Counts what partition `date` holds now, as it stands in `base` (fetched first on object
/// storage, see [`Store::base`]), reading it whole: what a reconciliation rebuilds when the
/// state database has no counts for it, or counts for another version of its file (a
/// restored database).
pub fn count_partition(base: &Base) -> Result<DayCounts, SinkError> {
    count_file(&base.path)
}

/// The counts of one partition file (a missing file is an empty partition).
fn count_file(path: &std::path::Path) -> Result<DayCounts, SinkError> {
    let mut rows = StoredRows::open(path)?;
    let (mut counts, mut n, mut max_seq) = (DayCounts::empty(), 0, 0);
    let mut tally = Tally { counts: &mut counts, rows: &mut n, max_seq: &mut max_seq };
    while let Some(row) = rows.next_before(i64::MAX)? {
        tally.add(&row);
    }
    counts.version = file_version(n, max_seq);
    Ok(counts)
}

/// The version of partition `date`'s local file (`rows:max_seq`, from its footer alone),
/// to check recorded counts against; `None` on object storage, where the recorded counts
/// are trusted (reading a footer there costs a request per day).
pub fn partition_version(sink: &Store, date: &str) -> Result<Option<String>, SinkError> {
    if sink.is_remote() {
        return Ok(None);
    }
    crate::sink::format::reader::version_of(&sink.partition_file(date)).map(Some)
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
