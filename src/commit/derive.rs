//! A day's history at commit time: its first file written beside its first `tasks` file
//! ([`Alongside`]), or derived from its stored history and the window's new `tasks` file,
//! caught up first when it lags ([`Day::derive`]). The files' format is
//! `sink/format/history_file.rs`; the derivation itself, pure, `transform/versions.rs`.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, TimeUnit};

use crate::sink::SinkError;
use crate::sink::format::history_file::{
    DERIVED_FROM, HistoryRows, derive_file, history_schema, max_seq_of, with_interval,
};
use crate::sink::format::writer::{FileWriter, parquet_error, writer_properties_builder};
use crate::sink::store::{Base, Staged, Store};

/// The first history of a day new to the data set, written beside its first `tasks` file
/// batch by batch: each row one current version, valid from its `changed_at`, which is
/// what [`crate::transform::versions::derive`] gives from no history, without reading the staged file
/// back. The columns are shared with the `tasks` batch, not copied.
pub struct Alongside {
    /// The history file being written, in staging.
    file: FileWriter,
    /// Its staging names.
    staged: Staged,
    /// The day's (absent) stored history, the condition of its PUT on object storage.
    base: Base,
    /// Versions written.
    rows: u64,
}

impl Alongside {
    /// Starts one for day `date` when its stored history (`base`) does not exist either;
    /// `None` otherwise (then the history is derived at the window's end).
    pub fn open(sink: &Store, date: &str, base: Base) -> Result<Option<Alongside>, SinkError> {
        if base.path.exists() {
            return Ok(None);
        }
        let staged = sink.stage(date);
        let props = writer_properties_builder().build();
        let file = FileWriter::create_with(&staged.file, history_schema(), props)?;
        Ok(Some(Alongside { file, staged, base, rows: 0 }))
    }

    /// Writes the versions of one batch of the `tasks` file.
    pub fn write(&mut self, tasks: &RecordBatch) -> Result<(), SinkError> {
        let perr = |e| parquet_error("write", &self.staged.file, e);
        let changed = tasks.column_by_name("changed_at").expect("the tasks schema has changed_at").clone();
        let none = arrow_array::new_null_array(
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            tasks.num_rows(),
        );
        let batch = with_interval(tasks, changed, none).map_err(perr)?;
        self.rows += batch.num_rows() as u64;
        self.file.write_batch(&batch)
    }

    /// Finishes the file, derived from the `tasks` file of version `derived_from`: the
    /// staged history, its base and the versions opened, as [`Day::derive`] returns them.
    pub fn finish(mut self, derived_from: &str) -> Result<(Staged, Base, u64), SinkError> {
        self.file.label(DERIVED_FROM, derived_from);
        self.file.finish()?;
        Ok((self.staged, self.base, self.rows))
    }
}

/// What [`Day::derive`] found and did.
pub enum DayHistory {
    /// The history is already derived from the stored `tasks` file (this version), and
    /// the window wrote no new one: nothing to write.
    Current(String),
    /// The history is derived from a newer `tasks` file than the one merged with: left
    /// as it is.
    Ahead,
    /// A new history, staged.
    Staged {
        /// Its file.
        staged: Staged,
        /// Where the stored one stood, for the commit.
        base: Base,
        /// Versions it opened.
        opened: u64,
        /// The version of the `tasks` file it is derived from.
        current: String,
    },
}

/// One day being written: where its history is derived.
pub struct Day<'a> {
    /// The store, which stages files.
    pub store: &'a Store,
    /// The day, as in `create_date=`.
    pub date: &'a str,
    /// Its stored `tasks` file (the base the window merged with).
    pub tasks: &'a Path,
    /// Its version (`rows:max_seq`), which the merge read when it opened it.
    pub version: &'a str,
}

impl Day<'_> {
    /// The day's new history, staged, with its stored version and the versions opened:
    /// caught up first with the stored `tasks` file when it lags it (a crash or a failed
    /// PUT between the two files), then derived from the new one (`new_tasks`, with its
    /// version, when the window wrote one). None is needed when the history is current and
    /// the window wrote no `tasks` file: a quiet window writes no history either.
    pub fn derive(&self, base: Base, new_tasks: Option<(&Path, &str)>) -> Result<DayHistory, SinkError> {
        let stored_version = self.version.to_string();
        let derived_from = HistoryRows::open(&base.path)?.derived_from().map(str::to_string);
        let (history_seq, tasks_seq) = (derived_from.as_deref().map_or(0, max_seq_of), max_seq_of(&stored_version));
        // A history derived from a newer tasks file than the one merged with: another
        // writer replaced both since this window fetched the tasks object (object storage;
        // this window's own tasks PUT, if any, then conflicts and it merges again), or the
        // tasks file was restored from a backup and the history not. Deriving from the older
        // file would roll the history back: it is left as it is, loudly.
        if history_seq > tasks_seq {
            tracing::warn!(
                partition = %self.date, history = ?derived_from, tasks = %stored_version,
                "The day's history is newer than the tasks file merged with; leaving it as it is (another writer's, or tasks/ restored without task_history/: move the history file aside to start it afresh from tasks/)"
            );
            return Ok(DayHistory::Ahead);
        }
        let lags = match &derived_from {
            Some(v) => *v != stored_version,
            None => stored_version != crate::sink::format::reader::file_version(0, 0),
        };
        if !lags && new_tasks.is_none() {
            return Ok(DayHistory::Current(stored_version));
        }
        let (mut from, mut staged, mut opened) = (base.path.clone(), None, 0);
        if lags {
            tracing::info!(
                partition = %self.date, history = ?derived_from, tasks = %stored_version,
                "Catching the day's history up with its tasks file"
            );
            let (s, n) = self.step(&from, self.tasks, &stored_version)?;
            (from, staged, opened) = (s.file.clone(), Some(s), opened + n);
        }
        let mut current = stored_version;
        if let Some((tasks, version)) = new_tasks {
            // `staged`, which `from` may name, lives until this step has read it.
            let (s, n) = self.step(&from, tasks, version)?;
            (staged, opened, current) = (Some(s), opened + n, version.to_string());
        }
        Ok(DayHistory::Staged { staged: staged.expect("one step ran"), base, opened, current })
    }

    /// One derivation into a fresh staged file: it and the versions it opened.
    fn step(&self, history: &Path, tasks: &Path, version: &str) -> Result<(Staged, u64), SinkError> {
        let (staged, spare) = (self.store.stage(self.date), self.store.stage(self.date));
        let d = derive_file(history, tasks, &staged.file, &spare.file, version)?;
        Ok((staged, d.opened))
    }
}
