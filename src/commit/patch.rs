//! What a window's end decides about stored rows it did not list where they were: the old
//! row of a task listed under another create_time of the day goes, and a row a complete
//! listing no longer had is marked deleted; then the staged file is rewritten with those
//! patches applied. Also the tally of rows as they are written, which gives a file its
//! version and a reconciliation its counts.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::row::{StoredRow, Text};
use crate::sink::SinkError;
use crate::sink::format::reader::{BATCH_ROWS, StoredRows, file_version};
use crate::sink::format::writer::FileWriter;
use crate::sink::store::{Base, Staged, Store};
use crate::state::DayCounts;
use crate::transform::merge::{Observed, believable_deletions, mark_deleted};

/// A stored row's key: (create_time, task_id).
type Key = (i64, Text);

/// What the listings of a window showed about stored rows, gathered leaf by leaf and
/// decided at the window's end ([`Ends::decide`]).
#[derive(Default)]
pub struct Ends {
    /// Keys of stored rows that complete listings of their leaves no longer had.
    pub missing: Vec<Key>,
    /// Stored rows the listings were compared with: what a share of deletions is of.
    pub compared: usize,
    /// Task ids with no stored row in the range they were listed in, and their
    /// create_time, kept only when there is a stored file (a fresh partition has nothing
    /// to move or delete): a stored row of one of them elsewhere in the partition is its
    /// old place, removed at the end, so the partition keeps one row per task_id.
    pub new_ids: HashMap<Text, i64>,
    /// Keys of stored rows whose task was listed under another create_time in the same
    /// leaf: dropped at the end.
    pub moved: Vec<Key>,
}

/// A change decided at a window's end, applied to one stored row by its key.
pub enum Patch {
    /// Its task moved within the day and was written under its new create_time.
    Drop,
    /// Its task was deleted upstream: the row marked.
    MarkDeleted,
}

/// The patches decided, and what they did to the window's figures.
#[derive(Default)]
pub struct Decided {
    /// The patches, by the key of the stored row each applies to.
    pub patches: HashMap<Key, Patch>,
    /// Rows dropped because their task moved.
    pub moved: u64,
    /// Tasks counted new by the merge that were moves instead.
    pub not_new: u64,
    /// Rows marked deleted.
    pub deleted: u64,
}

impl Ends {
    /// Whether the end may write anything: rows to drop, or (when `may_delete`) to mark.
    pub fn may_patch(&self, may_delete: bool) -> bool {
        !self.moved.is_empty() || !self.new_ids.is_empty() || (may_delete && !self.missing.is_empty())
    }

    /// The old rows of tasks listed under another create_time of the day go; rows the
    /// listings no longer had are marked deleted (when `may_delete`), unless their task was
    /// listed elsewhere (moved), and unless that would be most of what was compared (see
    /// [`believable_deletions`]). `stored` is the file merged with, read once more only when
    /// the window listed tasks new to it.
    pub fn decide(self, stored: &Path, may_delete: bool, date: &str) -> Result<Decided, SinkError> {
        let mut d = Decided::default();
        for key in self.moved {
            d.moved += 1;
            d.patches.insert(key, Patch::Drop);
        }
        if !self.new_ids.is_empty() {
            let mut rows = StoredRows::open(stored)?;
            let mut matched = HashSet::new();
            while let Some(row) = rows.next_before(i64::MAX)? {
                let id = &row.task.task_id;
                if self.new_ids.get(id).is_some_and(|&c| c != row.task.create_time) {
                    if matched.insert(id.clone()) {
                        (d.moved, d.not_new) = (d.moved + 1, d.not_new + 1);
                    }
                    d.patches.insert((row.task.create_time, id.clone()), Patch::Drop);
                }
            }
        }
        let deleted: Vec<_> = self.missing.into_iter().filter(|(_, id)| !self.new_ids.contains_key(id)).collect();
        if !may_delete || deleted.is_empty() {
            return Ok(d);
        }
        if !believable_deletions(deleted.len(), self.compared) {
            tracing::warn!(
                partition = %date, missing = deleted.len(), compared = self.compared,
                "Not marking tasks deleted: a listing that lost most of what it was compared with looks like a fault of the API; the next reconciliation lists it again"
            );
            return Ok(d);
        }
        d.deleted = deleted.len() as u64;
        d.patches.extend(deleted.into_iter().map(|key| (key, Patch::MarkDeleted)));
        Ok(d)
    }
}

/// Rewrites `from` (the staged file, or the stored one when nothing else changed) with
/// `patches` applied into a new staged file of day `date`, counting its rows afresh into
/// `written`. Marks are stamped with `seen`.
pub fn apply(
    store: &Store,
    date: &str,
    from: &Path,
    patches: &HashMap<Key, Patch>,
    seen: Observed,
    written: &mut Written,
) -> Result<Staged, SinkError> {
    let staged = store.stage(date);
    let mut writer = FileWriter::create(&staged.file)?;
    let mut input = StoredRows::open(from)?;
    *written = Written::default();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = input.next_before(i64::MAX)? {
        let row = match patches.get(&(row.task.create_time, row.task.task_id.clone())) {
            Some(Patch::Drop) => continue,
            Some(Patch::MarkDeleted) => mark_deleted(row, seen),
            None => row,
        };
        written.add(&row);
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
    Ok(staged)
}

/// The rows of a file as they are written: its counts per minute and its version.
pub struct Written {
    /// The per-minute counts being built.
    pub counts: DayCounts,
    /// Rows counted: half of the file's version (`rows:max_seq`).
    pub rows: u64,
    /// Newest `observed_seq` among the rows counted: the other half.
    pub max_seq: i64,
}

impl Default for Written {
    fn default() -> Written {
        Written { counts: DayCounts::empty(), rows: 0, max_seq: 0 }
    }
}

impl Written {
    /// Counts one row written.
    pub fn add(&mut self, row: &StoredRow) {
        self.counts.add(row);
        self.rows += 1;
        self.max_seq = self.max_seq.max(row.observed_seq);
    }

    /// The counts, with the version of the file they describe.
    pub fn into_counts(mut self) -> DayCounts {
        self.counts.version = file_version(self.rows, self.max_seq);
        self.counts
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
pub fn count_file(path: &Path) -> Result<DayCounts, SinkError> {
    let mut rows = StoredRows::open(path)?;
    let mut written = Written::default();
    while let Some(row) = rows.next_before(i64::MAX)? {
        written.add(&row);
    }
    Ok(written.into_counts())
}

/// The version of partition `date`'s local file (`rows:max_seq`, from its footer alone),
/// to check recorded counts against; `None` on object storage, where the recorded counts
/// are trusted (reading a footer there costs a request per day).
pub fn partition_version(store: &Store, date: &str) -> Result<Option<String>, SinkError> {
    if store.is_remote() {
        return Ok(None);
    }
    crate::sink::format::reader::version_of(&store.partition_file(date)).map(Some)
}
