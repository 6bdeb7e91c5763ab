//! Writing one Parquet file of the data set, batch by batch, and the writer settings every
//! file shares (chosen by measurement). Where the file goes once written is the store's
//! business (`sink/store/`); when, the commit's (`commit/`).

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::schema::{schema, to_batch};
use crate::row::StoredRow;
use crate::sink::SinkError;

/// A Parquet file being written row batch by row batch (step 1 of the protocol).
pub struct FileWriter {
    /// The file written, named in errors.
    path: PathBuf,
    /// A second handle on the file, kept to fsync it after the writer closes.
    file: File,
    /// The Parquet writer, with the output schema.
    writer: ArrowWriter<File>,
}

impl FileWriter {
    /// Creates the file with the output schema and the writer settings below.
    pub fn create(path: &Path) -> Result<FileWriter, SinkError> {
        FileWriter::create_with(path, schema(), writer_properties())
    }

    /// Creates a file of another schema (`task_history/`'s, with its footer entry).
    pub fn create_with(
        path: &Path,
        schema: arrow_schema::SchemaRef,
        props: WriterProperties,
    ) -> Result<FileWriter, SinkError> {
        let file = File::create(path).map_err(SinkError::io("create", path))?;
        let handle = file.try_clone().map_err(SinkError::io("open", path))?;
        let writer = ArrowWriter::try_new(handle, schema, Some(props)).map_err(|e| parquet_error("write", path, e))?;
        Ok(FileWriter { path: path.to_path_buf(), file, writer })
    }

    /// Appends rows, which must continue the sort order of what was written before.
    pub fn write(&mut self, rows: &[StoredRow]) -> Result<(), SinkError> {
        let batch = to_batch(rows).map_err(|e| parquet_error("write", &self.path, e))?;
        self.write_batch(&batch)
    }

    /// Appends one record batch of the file's schema.
    pub fn write_batch(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), SinkError> {
        self.writer.write(batch).map_err(|e| parquet_error("write", &self.path, e))
    }

    /// Adds a key-value entry to the footer, before [`FileWriter::finish`].
    pub fn label(&mut self, key: &str, value: &str) {
        self.writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(key.into(), value.to_string()));
    }

    /// Writes the footer and fsyncs the file (step 2 of the protocol).
    #[inline(never)] // a stage of bench/profile.sh
    pub fn finish(self) -> Result<(), SinkError> {
        self.writer.close().map_err(|e| parquet_error("write", &self.path, e))?;
        self.file.sync_all().map_err(SinkError::io("fsync", &self.path))
    }
}

pub(crate) fn parquet_error(action: &'static str, path: &Path, e: impl std::fmt::Display) -> SinkError {
    SinkError::Parquet { action, path: path.to_path_buf(), message: e.to_string() }
}

/// The writer settings, chosen by measurement (examples/layout_experiment.rs, BENCHMARKS.md):
/// zstd level 1 (level 3 spent 10-25 % more encoding time for 1 % more bytes in 8,192-row
/// groups); no dictionary for columns (nearly) unique per task, bitrates included (a
/// dictionary there only adds a page that is thrown away, and readers pay for the
/// fallback); delta encoding for the time columns, which are sorted or close to each
/// other. At 1M tasks: 80.7 bytes per row, DuckDB's own COPY 81.1.
pub fn writer_properties() -> WriterProperties {
    writer_properties_builder().build()
}

/// [`writer_properties`] before it is built, for files that add to it (`task_history/`'s
/// footer entry and time columns).
pub fn writer_properties_builder() -> parquet::file::properties::WriterPropertiesBuilder {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("1 is a valid zstd level")));
    for column in &super::schema::COLUMNS {
        if column.no_dictionary {
            b = b.set_column_dictionary_enabled(ColumnPath::from(column.name), false);
        }
        if column.delta {
            b = b.set_column_encoding(ColumnPath::from(column.name), Encoding::DELTA_BINARY_PACKED);
        }
    }
    // The writer buffers a whole row group, so the row group size bounds its memory
    // whatever the size of a day: 8,192 rows kept a 1M-task backfill's heap at 38 MB
    // where 122,880 (DuckDB's own) took 100 MB. The reports run within 10 % of DuckDB's
    // own files, which scan row groups of this size in parallel (BENCHMARKS.md).
    b.set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
}

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 8_192;
