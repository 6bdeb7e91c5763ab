//! Reading stored partition files: a stream of rows in file order, checked to be sorted
//! by (create_time, task_id), and a whole-file read for tools and tests.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::schema::from_batch;
use crate::row::StoredRow;
use crate::sink::SinkError;
use crate::transform::merge::key;

/// Rows decoded from a stored file at a time; also the size of a write batch, so that a
/// rewrite holds about one batch of each side.
pub const BATCH_ROWS: usize = 4096;

/// The rows of a stored partition file, streamed in file order, checked to be sorted.
pub struct StoredRows {
    /// The file read, named in errors.
    path: PathBuf,
    /// `None` once exhausted, or when the partition has no file.
    batches: Option<ParquetRecordBatchReader>,
    /// Decoded rows of the current batch not yet taken.
    buffered: VecDeque<StoredRow>,
    /// The key of the last row handed out, to check the file's order.
    last: Option<(i64, crate::row::Text)>,
    /// Whether there was a file at all.
    opened: bool,
    /// The largest `observed_seq` in the file, from its column statistics (0 without a
    /// file, or for files written before the column existed).
    max_seq: i64,
    /// Rows in the file, from its footer: with `max_seq`, the file's version.
    rows: u64,
}

impl StoredRows {
    /// Opens `path`; a missing file is an empty partition.
    pub fn open(path: &Path) -> Result<StoredRows, SinkError> {
        let perr = |e: parquet::errors::ParquetError| SinkError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let (batches, max_seq, rows) = match File::open(path) {
            Ok(f) => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(perr)?;
                let max_seq = max_observed_seq(builder.metadata());
                let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
                (Some(builder.with_batch_size(BATCH_ROWS).build().map_err(perr)?), max_seq, rows)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0, 0),
            Err(e) => return Err(SinkError::Io { action: "open", path: path.to_path_buf(), source: e }),
        };
        Ok(StoredRows {
            path: path.to_path_buf(),
            opened: batches.is_some(),
            max_seq,
            rows,
            batches,
            buffered: VecDeque::new(),
            last: None,
        })
    }

    /// Whether the partition had a file when opened.
    pub fn exists(&self) -> bool {
        self.opened
    }

    /// The newest observation the file holds: a new observation must be numbered above it,
    /// whatever the state database's own sequence says (restored, lost, or another host's).
    pub fn max_observed_seq(&self) -> i64 {
        self.max_seq
    }

    /// The file's version (`rows:max_seq`, as [`version_of`] reads it).
    pub fn version(&self) -> String {
        file_version(self.rows, self.max_seq)
    }

    /// The next row if its create_time is before `end`.
    pub fn next_before(&mut self, end: i64) -> Result<Option<StoredRow>, SinkError> {
        if self.buffered.is_empty() {
            self.refill()?;
        }
        match self.buffered.front() {
            Some(row) if row.task.create_time < end => Ok(self.buffered.pop_front()),
            _ => Ok(None),
        }
    }

    fn refill(&mut self) -> Result<(), SinkError> {
        let perr = |message: String| SinkError::Unreadable { path: self.path.clone(), message };
        let Some(batch) = self.batches.as_mut().and_then(Iterator::next) else {
            self.batches = None;
            return Ok(());
        };
        let rows = from_batch(&batch.map_err(|e| perr(e.to_string()))?).map_err(perr)?;
        for row in &rows {
            if self.last.as_ref().is_some_and(|(t, id)| (*t, id.as_str()) >= key(row)) {
                return Err(perr(format!(
                    "rows are not sorted by (create_time, task_id) at task_id {}",
                    row.task.task_id
                )));
            }
            self.last = Some((row.task.create_time, row.task.task_id.clone()));
        }
        self.buffered.extend(rows);
        Ok(())
    }
}

/// The largest `observed_seq` in a file, read from its row groups' statistics without
/// reading a row; 0 when the column or its statistics are absent.
pub fn max_observed_seq(meta: &parquet::file::metadata::ParquetMetaData) -> i64 {
    let schema = meta.file_metadata().schema_descr();
    let Some(col) = (0..schema.num_columns()).find(|&i| schema.column(i).name() == "observed_seq") else { return 0 };
    let max = |rg: &parquet::file::metadata::RowGroupMetaData| match rg.column(col).statistics() {
        Some(parquet::file::statistics::Statistics::Int64(s)) => s.max_opt().copied().unwrap_or(0),
        _ => 0,
    };
    meta.row_groups().iter().map(max).max().unwrap_or(0)
}

/// Reads a whole partition file written by the sink; a missing file is an empty partition.
/// It goes through the same streaming reader as the merge, order check included.
pub fn read_file(path: &Path) -> Result<Vec<StoredRow>, SinkError> {
    let mut stored = StoredRows::open(path)?;
    let mut rows = Vec::new();
    while let Some(row) = stored.next_before(i64::MAX)? {
        rows.push(row);
    }
    Ok(rows)
}

/// A partition file's version as [`DayCounts::version`] records it: its row count and its
/// newest observation, both readable from its footer alone.
pub fn file_version(rows: u64, max_seq: i64) -> String {
    format!("{rows}:{max_seq}")
}

/// The version of the partition file at `path` (`rows:max_seq`, from its footer alone);
/// a missing file is an empty partition.
pub fn version_of(path: &std::path::Path) -> Result<String, SinkError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(file_version(0, 0)),
        Err(e) => return Err(SinkError::Io { action: "open", path: path.to_path_buf(), source: e }),
    };
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| SinkError::Unreadable { path: path.to_path_buf(), message: e.to_string() })?;
    let rows: i64 = meta.row_groups().iter().map(|rg| rg.num_rows()).sum();
    Ok(file_version(rows as u64, max_observed_seq(&meta)))
}
