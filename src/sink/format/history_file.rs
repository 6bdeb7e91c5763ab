//! The files of `task_history/`: their Arrow schema (the columns of `tasks` plus
//! `valid_from` and `valid_to`), a stream of their rows checked to be sorted by
//! (create_time, task_id, observed_seq), and the footer entry that says which `tasks` file
//! a history file was derived from.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::reader::BATCH_ROWS;
use super::schema::{from_batch, schema, to_batch};
use crate::sink::SinkError;
use crate::transform::versions::{HistoryRow, history_key};

/// The footer key naming the version (`rows:max_seq`) of the `tasks` file a history file
/// was derived from: a history file whose entry differs from its day's `tasks` file lags
/// it (a crash or a failed PUT between the two files), and the next write of the day
/// catches it up before anything else.
pub const DERIVED_FROM: &str = "tasksync.derived_from";

/// The schema of `task_history/`: `tasks`' columns, then the version's interval.
pub fn history_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields: Vec<Field> = schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("valid_from", ts.clone(), false));
    fields.push(Field::new("valid_to", ts, true));
    Arc::new(Schema::new(fields))
}

/// A batch of `tasks` rows with each version's interval appended: one record batch in
/// [`history_schema`].
pub fn with_interval(
    tasks: &RecordBatch,
    from: ArrayRef,
    to: ArrayRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = tasks.columns().to_vec();
    columns.extend([from, to]);
    RecordBatch::try_new(history_schema(), columns)
}

/// One record batch of a history file -> rows.
fn from_history_batch(batch: &RecordBatch) -> Result<Vec<HistoryRow>, String> {
    let stored = from_batch(batch)?;
    let column = |name: &str| {
        let c = batch.column_by_name(name).ok_or_else(|| format!("column `{name}` is missing"))?;
        c.as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| format!("column `{name}` has type {}", c.data_type()))
    };
    let (from, to) = (column("valid_from")?, column("valid_to")?);
    stored
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            if from.is_null(i) {
                return Err(format!("a valid_from is null (task_id {})", row.task.task_id));
            }
            let valid_to = if to.is_null(i) { None } else { Some(to.value(i)) };
            Ok(HistoryRow { row, valid_from: from.value(i), valid_to })
        })
        .collect()
}

/// The rows of a history file, streamed in file order and checked to be sorted.
pub struct HistoryRows {
    /// The file read, named in errors.
    path: PathBuf,
    /// `None` once exhausted, or when there is no file.
    batches: Option<ParquetRecordBatchReader>,
    /// Decoded rows not yet taken.
    buffered: VecDeque<HistoryRow>,
    /// The key of the last row handed out, to check the order.
    last: Option<(i64, crate::row::Text, i64)>,
    /// The file's [`DERIVED_FROM`] entry; `None` without a file (or without the entry).
    derived_from: Option<String>,
}

impl HistoryRows {
    /// Opens `path`; a missing file is a day without history yet.
    pub fn open(path: &Path) -> Result<HistoryRows, SinkError> {
        let perr = |e: parquet::errors::ParquetError| SinkError::Unreadable {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let (batches, derived_from) = match File::open(path) {
            Ok(f) => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(perr)?;
                let derived = footer_entry(builder.metadata(), DERIVED_FROM);
                (Some(builder.with_batch_size(BATCH_ROWS).build().map_err(perr)?), derived)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(SinkError::Io { action: "open", path: path.to_path_buf(), source: e }),
        };
        Ok(HistoryRows { path: path.to_path_buf(), batches, buffered: VecDeque::new(), last: None, derived_from })
    }

    /// The version of the `tasks` file this history was derived from.
    pub fn derived_from(&self) -> Option<&str> {
        self.derived_from.as_deref()
    }

    /// The next row, if any.
    pub fn next_row(&mut self) -> Result<Option<HistoryRow>, SinkError> {
        if self.buffered.is_empty() {
            self.refill()?;
        }
        Ok(self.buffered.pop_front())
    }

    fn refill(&mut self) -> Result<(), SinkError> {
        let perr = |message: String| SinkError::Unreadable { path: self.path.clone(), message };
        let Some(batch) = self.batches.as_mut().and_then(Iterator::next) else {
            self.batches = None;
            return Ok(());
        };
        let rows = from_history_batch(&batch.map_err(|e| perr(e.to_string()))?).map_err(perr)?;
        for row in &rows {
            let key = history_key(row);
            if self.last.as_ref().is_some_and(|(t, id, s)| (*t, id.as_str(), *s) >= key) {
                return Err(perr(format!(
                    "rows are not sorted by (create_time, task_id, observed_seq) at task_id {}",
                    row.row.task.task_id
                )));
            }
            self.last = Some((key.0, key.1.into(), key.2));
        }
        self.buffered.extend(rows);
        Ok(())
    }
}

/// A key-value entry of a Parquet footer.
fn footer_entry(meta: &parquet::file::metadata::ParquetMetaData, key: &str) -> Option<String> {
    let kv = meta.file_metadata().key_value_metadata()?;
    kv.iter().find(|e| e.key == key).and_then(|e| e.value.clone())
}

/// Reads a whole history file (tests and tools); a missing file has no rows.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>, SinkError> {
    let mut rows = HistoryRows::open(path)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next_row()? {
        out.push(r);
    }
    Ok(out)
}

/// Derives a day's new history ([`crate::transform::versions::derive`]) from the history file at
/// `history` and the `tasks` file at `tasks` into `out`, whose footer records `derived_from`
/// (the version of `tasks`), fsynced. A task moved to a later create_time makes a second
/// pass over `out` (into `spare`, renamed over it) to close its old version.
pub fn derive_file(
    history: &Path,
    tasks: &Path,
    out: &Path,
    spare: &Path,
    derived_from: &str,
) -> Result<crate::transform::versions::Derived, SinkError> {
    let mut input = HistoryRows::open(history)?;
    let mut stored = super::reader::StoredRows::open(tasks)?;
    let mut writer = HistoryWriter::create(out, derived_from)?;
    let derived = crate::transform::versions::derive(
        std::iter::from_fn(|| input.next_row().transpose()),
        std::iter::from_fn(|| stored.next_before(i64::MAX).transpose()),
        |row| writer.push(row),
    )?;
    writer.finish()?;
    if derived.orphans > 0 {
        tracing::warn!(
            file = %history.display(), versions = derived.orphans,
            "Keeping current versions whose task the day's tasks file no longer holds; verify names them"
        );
    }
    if !derived.late_closes.is_empty() {
        let mut input = HistoryRows::open(out)?;
        let mut writer = HistoryWriter::create(spare, derived_from)?;
        while let Some(row) = input.next_row()? {
            writer.push(crate::transform::versions::close_late(row, &derived.late_closes))?;
        }
        writer.finish()?;
        std::fs::rename(spare, out).map_err(SinkError::io("rename", spare))?;
    }
    Ok(derived)
}

/// Writes `rows` as a history file at `path` derived from `derived_from` (tests of readers).
#[cfg(test)]
pub(crate) fn write_history(path: &Path, rows: &[HistoryRow], derived_from: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = HistoryWriter::create(path, derived_from).unwrap();
    for r in rows {
        w.push(r.clone()).unwrap();
    }
    w.finish().unwrap();
}

/// A history file being written batch by batch.
struct HistoryWriter {
    /// The Parquet writer, with [`history_schema`] and the footer entry.
    file: super::writer::FileWriter,
    /// The rows of the versions not yet written, kept apart from their intervals so that
    /// they become a batch without a copy.
    rows: Vec<crate::row::StoredRow>,
    /// Their intervals: `valid_from`, `valid_to`.
    intervals: Vec<(i64, Option<i64>)>,
    /// The file, named in errors.
    path: PathBuf,
}

impl HistoryWriter {
    fn create(path: &Path, derived_from: &str) -> Result<HistoryWriter, SinkError> {
        let props = super::writer::writer_properties_builder()
            .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                DERIVED_FROM.to_string(),
                derived_from.to_string(),
            )]))
            .build();
        let file = super::writer::FileWriter::create_with(path, history_schema(), props)?;
        let (rows, intervals) = (Vec::with_capacity(BATCH_ROWS), Vec::with_capacity(BATCH_ROWS));
        Ok(HistoryWriter { file, rows, intervals, path: path.to_path_buf() })
    }

    fn push(&mut self, v: HistoryRow) -> Result<(), SinkError> {
        self.rows.push(v.row);
        self.intervals.push((v.valid_from, v.valid_to));
        if self.rows.len() == BATCH_ROWS { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let perr = |e| super::writer::parquet_error("write", &self.path, e);
        let from: TimestampMicrosecondArray = self.intervals.iter().map(|(f, _)| Some(*f)).collect();
        let to: TimestampMicrosecondArray = self.intervals.iter().map(|(_, t)| *t).collect();
        let tasks = to_batch(&self.rows).map_err(perr)?;
        let batch = with_interval(&tasks, Arc::new(from.with_timezone("UTC")), Arc::new(to.with_timezone("UTC")))
            .map_err(perr)?;
        self.rows.clear();
        self.intervals.clear();
        self.file.write_batch(&batch)
    }

    fn finish(mut self) -> Result<(), SinkError> {
        if !self.rows.is_empty() {
            self.flush()?;
        }
        self.file.finish()
    }
}

/// The newest observation of a file version (`rows:max_seq`).
pub fn max_seq_of(version: &str) -> i64 {
    version.rsplit(':').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}
