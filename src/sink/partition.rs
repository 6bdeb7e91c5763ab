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

use super::SinkError;
use super::merge::{Observed, delta, overlay};
use super::reader::{BATCH_ROWS, StoredRows};
use super::writer::{Base, FileWriter, Sink, Staged};
use crate::plan::Window;
use crate::row::{StoredRow, TaskRow};

/// What rewriting a partition did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Task ids not in the partition before.
    pub new: usize,
    /// Task ids whose content changed.
    pub changed: usize,
    /// Whether a new file replaced (or created) the partition's.
    pub written: bool,
}

/// The staged file being written, and the copy cursor feeding it.
struct Output {
    staged: Staged,
    writer: FileWriter,
    copy: StoredRows,
}

/// One partition being merged with the leaves of one window. The caller holds the
/// partition's lock from [`PartitionMerge::open`] to [`PartitionMerge::finish`].
pub struct PartitionMerge {
    sink: Arc<Sink>,
    date: String,
    /// When and in which order this window's observations were made.
    seen: Observed,
    compare: StoredRows,
    /// The stored version merged with (a fetched copy for object storage, with its ETag).
    base: Base,
    /// Opened at the first flush; `None` while nothing has changed.
    out: Option<Output>,
    /// Changed and new rows not yet written, sorted, all before `done_to`.
    pending: Vec<StoredRow>,
    /// End of the last leaf merged: stored rows before it are final for this window.
    done_to: i64,
    outcome: Outcome,
}

impl PartitionMerge {
    /// Starts merging into partition `date`, stamping changes with `seen`.
    pub fn open(sink: Arc<Sink>, date: &str, seen: Observed) -> Result<PartitionMerge, SinkError> {
        let base = sink.base(date)?;
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
        for row in overlay(stored, std::mem::take(&mut self.pending)) {
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                out.writer.write(&batch)?;
                batch.clear();
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if !batch.is_empty() {
            out.writer.write(&batch)?;
        }
        Ok(())
    }

    /// Finishes the window: when anything changed, writes the rest of the stored rows,
    /// then commits the staged file by the protocol of `writer.rs`.
    pub fn finish(mut self) -> Result<Outcome, SinkError> {
        if self.out.is_none() && self.pending.is_empty() {
            return Ok(self.outcome);
        }
        self.done_to = i64::MAX;
        self.flush()?;
        let Output { staged, writer, .. } = self.out.take().expect("flush opened it");
        writer.finish()?;
        self.sink.commit(&self.date, staged, &self.base)?;
        Ok(Outcome { written: true, ..self.outcome })
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
