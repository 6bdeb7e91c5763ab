//! `tasksync verify`: reads the whole data set and checks every promise docs/analysts.md makes
//! to analysts, naming each problem (file, task_id). Read-only: it opens files for reading
//! and nothing else.
//!
//! It reads only the columns it needs (`task_id`, `create_time`) and keeps one 8-byte hash
//! per row for the duplicate check; a second pass over the files names the task_ids of
//! the rare hashes seen twice. `task_history/` is checked against `tasks/` in `history`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::sink::format::schema::schema;
use crate::sink::store::PART_FILE;
use crate::time::utc_date;

/// Columns added after the first files were written: a file without them is noted, not
/// failed (it is rewritten with them the next time its rows change).
const ADDED_COLUMNS: [&str; 3] = ["extra", "observed_seq", "deleted_at"];

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Partition files read.
    pub files: usize,
    /// Rows read.
    pub rows: u64,
    /// Rows marked deleted upstream (`deleted_at` set): kept, and excluded by analysts
    /// who ask what exists now.
    pub deleted: u64,
    /// First and last partition date.
    pub dates: Option<(String, String)>,
    /// Each broken promise, in a sentence naming the file or task_id.
    pub problems: Vec<String>,
    /// Things worth knowing that break no promise.
    pub notes: Vec<String>,
    /// What `task_history/` held; `None` when there is none (`storage.history` off).
    pub history: Option<history::HistoryFindings>,
}

/// Checks the data set under `output_dir`. Running writers may be mid-write: only what
/// is left in `_staging/` by writers that are gone is a problem.
pub fn verify(output_dir: &Path) -> Findings {
    let mut f = verify_files(output_dir);
    check_staging(output_dir, &mut f);
    f
}

/// The checks of the partition files under `{root}/tasks/`, without the staging area.
fn verify_files(root: &Path) -> Findings {
    let mut f = Findings::default();
    let tasks = root.join("tasks");
    let files = partition_files(&tasks, &mut f);
    let mut hashes: Vec<(u64, u32)> = Vec::new();
    for (i, (date, path)) in files.iter().enumerate() {
        f.files += 1;
        if let Err(problem) = check_file(path, date, i as u32, &mut hashes, &mut f) {
            f.problems.push(format!("{}: {problem}", path.display()));
        }
    }
    f.dates = files.first().zip(files.last()).map(|((a, _), (b, _))| (a.clone(), b.clone()));
    name_duplicates(&files, hashes, &mut f);
    check_local_history(root, &files, &mut f);
    f
}

/// `task_history/` beside `tasks/`, when there is one: each day against its `tasks` file,
/// and no day of its own.
fn check_local_history(root: &Path, files: &[(String, PathBuf)], f: &mut Findings) {
    let dir = root.join("task_history");
    if !dir.is_dir() {
        return;
    }
    let mut h = history::HistoryFindings::default();
    let dates: HashSet<&str> = files.iter().map(|(d, _)| d.as_str()).collect();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.strip_prefix("create_date=").is_some_and(|d| dates.contains(d)) {
            f.problems
                .push(format!("{}: stray entry under task_history/ (no such day in tasks/)", entry.path().display()));
        }
    }
    for (date, tasks) in files {
        let path = dir.join(format!("create_date={date}")).join(PART_FILE);
        let shown = path.display().to_string();
        let mut said = history::Said { problems: &mut f.problems, notes: &mut f.notes };
        h.day(date, tasks, Some(&path).filter(|p| p.is_file()).map(PathBuf::as_path), &shown, &mut said);
    }
    h.finish(&mut history::Said { problems: &mut f.problems, notes: &mut f.notes });
    f.history = Some(h);
}

/// [`verify`] for a data set on object storage: every object under `tasks/` is fetched,
/// one day at a time (with its `task_history/` object), into a private scratch directory (mode 0700, a random name under
/// `$TMPDIR`, never the service's), checked the same way and removed, and named by its
/// `s3://` URL; the local work directory's staging is checked as for a local output. The
/// directory goes when this returns or its future is dropped (`cli.rs` drops it on
/// SIGINT and SIGTERM), so disk holds one day's copies at most.
pub async fn verify_remote(s3: &crate::config::S3Config, work_dir: &Path) -> Result<Findings, crate::sink::SinkError> {
    use crate::sink::SinkError;
    let remote = crate::sink::store::remote::Remote::open(s3)?;
    let temp = std::env::temp_dir();
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    let scratch = tempfile::Builder::new()
        .prefix("tasksync-verify-")
        .permissions(private)
        .tempdir_in(&temp)
        .map_err(SinkError::io("create a directory in", &temp))?;
    let copy = scratch.path().join(PART_FILE);
    let history_copy = scratch.path().join("history.parquet");
    let mut f = Findings::default();
    let files = remote_partition_files(remote.list("tasks").await?, &remote, &mut f);
    let history_keys = remote.list("task_history").await?;
    let dates: HashSet<String> =
        files.iter().map(|(d, _)| format!("task_history/create_date={d}/{PART_FILE}")).collect();
    for (key, _) in history_keys.iter().filter(|(k, _)| !dates.contains(k)) {
        f.problems.push(format!("{}: stray object under task_history/ (no such day in tasks/)", remote.show(key)));
    }
    let mut history = (!history_keys.is_empty()).then(history::HistoryFindings::default);
    let mut hashes: Vec<(u64, u32)> = Vec::new();
    for (i, (date, key)) in files.iter().enumerate() {
        remote.download(key, &copy).await?;
        f.files += 1;
        let (problems, notes) = (f.problems.len(), f.notes.len());
        if let Err(problem) = tokio::task::block_in_place(|| check_file(&copy, date, i as u32, &mut hashes, &mut f)) {
            f.problems.push(format!("{}: {problem}", copy.display()));
        }
        if let Some(h) = history.as_mut() {
            let rel = crate::sink::store::history_object_key(date);
            let fetched = remote.fetch(&rel, &history_copy).await?.map(|_| history_copy.as_path());
            let mut said = history::Said { problems: &mut f.problems, notes: &mut f.notes };
            tokio::task::block_in_place(|| h.day(date, &copy, fetched, &remote.show(&rel), &mut said));
            let _ = std::fs::remove_file(&history_copy);
        }
        let (shown, name) = (copy.display().to_string(), remote.show(key));
        for text in f.problems[problems..].iter_mut().chain(f.notes[notes..].iter_mut()) {
            *text = text.replace(&shown, &name);
        }
        let _ = std::fs::remove_file(&copy);
    }
    if let Some(h) = history {
        h.finish(&mut history::Said { problems: &mut f.problems, notes: &mut f.notes });
        f.history = Some(h);
    }
    f.dates = files.first().zip(files.last()).map(|((a, _), (b, _))| (a.clone(), b.clone()));
    let twice = seen_twice(hashes);
    if !twice.is_empty() {
        let mut places = HashMap::new();
        for (_, key) in &files {
            remote.download(key, &copy).await?;
            tokio::task::block_in_place(|| place_ids(&copy, &remote.show(key), &twice, &mut places));
            let _ = std::fs::remove_file(&copy);
        }
        name_places(places, &mut f);
    }
    check_staging(work_dir, &mut f);
    Ok(f)
}

/// The partition objects among `keys` (relative to the prefix), sorted by date; any other
/// key under `tasks/` is a problem, as a stray entry is locally.
fn remote_partition_files(
    keys: Vec<(String, u64)>,
    remote: &crate::sink::store::remote::Remote,
    f: &mut Findings,
) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (key, _) in keys {
        let parts: Vec<&str> = key.split('/').collect();
        let date = match parts.as_slice() {
            ["tasks", dir, file] if *file == PART_FILE => dir.strip_prefix("create_date="),
            _ => None,
        };
        match date.filter(|d| crate::time::parse_instant(d).is_ok()) {
            Some(date) => files.push((date.to_string(), key)),
            None => f.problems.push(format!(
                "{}: stray object under tasks/ (not create_date=YYYY-MM-DD/{PART_FILE})",
                remote.show(&key)
            )),
        }
    }
    files.sort();
    files
}

/// The partition files under `tasks/`, sorted by date; anything else there is a problem.
fn partition_files(tasks: &Path, f: &mut Findings) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(tasks) else {
        f.problems.push(format!("{} does not exist or cannot be read", tasks.display()));
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let date = name.strip_prefix("create_date=").filter(|d| crate::time::parse_instant(d).is_ok());
        let Some(date) = date.filter(|_| path.is_dir()) else {
            f.problems
                .push(format!("{}: stray entry under tasks/ (not a create_date=YYYY-MM-DD directory)", path.display()));
            continue;
        };
        for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            if inner.file_name() != PART_FILE {
                f.problems.push(format!("{}: stray entry in a partition", inner.path().display()));
            }
        }
        match path.join(PART_FILE) {
            file if file.is_file() => files.push((date.to_string(), file)),
            file => f.problems.push(format!("{}: the partition has no {PART_FILE}", file.display())),
        }
    }
    files.sort();
    files
}

/// One file: readable, schema as documented, sorted, every row in its partition's day.
/// Adds one (hash, file index) per row to `hashes`.
fn check_file(
    path: &Path,
    date: &str,
    index: u32,
    hashes: &mut Vec<(u64, u32)>,
    f: &mut Findings,
) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let found = builder.schema().clone();
    for field in schema().fields() {
        match found.field_with_name(field.name()) {
            Ok(have) if have.data_type() == field.data_type() => {}
            Ok(have) => {
                return Err(format!(
                    "column `{}` has type {}, not {}",
                    field.name(),
                    have.data_type(),
                    field.data_type()
                ));
            }
            Err(_) if ADDED_COLUMNS.contains(&field.name().as_str()) => f.notes.push(format!(
                "{}: written by an older tasksync, without column `{}`",
                path.display(),
                field.name()
            )),
            Err(_) => return Err(format!("column `{}` is missing", field.name())),
        }
    }
    let mut roots: Vec<usize> = ["task_id", "create_time"].map(|c| found.index_of(c).expect("checked above")).to_vec();
    let deleted_at = found.index_of("deleted_at").ok();
    roots.extend(deleted_at);
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder.with_projection(mask).build().map_err(|e| format!("cannot read: {e}"))?;
    let start = crate::time::parse_instant(date).map_err(|e| format!("the partition's date: {e}"))?;
    let day = (start, start + crate::time::DAY);
    let mut scan = Scan { day, index, last: None, unsorted: None, misplaced: 0, first_misplaced: None };
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot read: {e}"))?;
        scan.batch(&batch, hashes)?;
        f.rows += batch.num_rows() as u64;
        if deleted_at.is_some() {
            let column = batch.column_by_name("deleted_at").ok_or("deleted_at is not in the projection")?;
            f.deleted += (column.len() - column.null_count()) as u64;
        }
    }
    let name = path.display();
    if let Some(id) = scan.unsorted {
        f.problems.push(format!("{name}: not sorted by (create_time, task_id) at task_id {id}"));
    }
    if let Some((id, day)) = scan.first_misplaced {
        let n = scan.misplaced;
        f.problems
            .push(format!("{name}: task_id {id} was created on {day} (UTC), not in this partition ({n} such rows)"));
    }
    Ok(())
}

/// One file's rows as they stream by; every row is hashed even after a problem, so that
/// duplicates are still found.
struct Scan {
    /// The partition's day, `[start, end)` in unix seconds.
    day: (i64, i64),
    /// The file's index, kept with each hash.
    index: u32,
    /// The key of the last row seen.
    last: Option<(i64, String)>,
    /// The task_id where the order first broke.
    unsorted: Option<String>,
    /// Rows of another day.
    misplaced: u64,
    /// The first of them, and its day.
    first_misplaced: Option<(String, String)>,
}

impl Scan {
    fn batch(&mut self, batch: &RecordBatch, hashes: &mut Vec<(u64, u32)>) -> Result<(), String> {
        let ids = batch.column(0).as_any().downcast_ref::<StringArray>().ok_or("task_id is not a string column")?;
        let times =
            batch.column(1).as_any().downcast_ref::<TimestampMicrosecondArray>().ok_or("create_time has no µs type")?;
        let carried = self.last.take();
        let mut previous = carried.as_ref().map(|(t, id)| (*t, id.as_str()));
        for i in 0..batch.num_rows() {
            if ids.is_null(i) || times.is_null(i) {
                return Err(format!("row {i} of a batch has a null task_id or create_time"));
            }
            let (id, secs) = (ids.value(i), times.value(i).div_euclid(1_000_000));
            if self.unsorted.is_none() && previous.is_some_and(|p| p >= (secs, id)) {
                self.unsorted = Some(id.to_string());
            }
            if !(self.day.0 <= secs && secs < self.day.1) {
                self.misplaced += 1;
                self.first_misplaced.get_or_insert_with(|| (id.to_string(), utc_date(secs)));
            }
            hashes.push((hash(id), self.index));
            previous = Some((secs, id));
        }
        self.last = previous.map(|(t, id)| (t, id.to_string()));
        Ok(())
    }
}

fn hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Finds hashes seen twice, then reads the files again to name the task_ids behind them.
fn name_duplicates(files: &[(String, PathBuf)], hashes: Vec<(u64, u32)>, f: &mut Findings) {
    let twice = seen_twice(hashes);
    if twice.is_empty() {
        return;
    }
    let mut places = HashMap::new();
    for (_, path) in files {
        place_ids(path, &path.display().to_string(), &twice, &mut places);
    }
    name_places(places, f);
}

/// The hashes that more than one row had.
fn seen_twice(mut hashes: Vec<(u64, u32)>) -> HashSet<u64> {
    hashes.sort_unstable();
    hashes.windows(2).filter(|w| w[0].0 == w[1].0).map(|w| w[0].0).collect()
}

/// Adds the file `shown` (read at `path`) to the places of each of its task_ids whose
/// hash is in `twice`.
fn place_ids(path: &Path, shown: &str, twice: &HashSet<u64>, places: &mut HashMap<String, Vec<String>>) {
    let ids = crate::sink::format::reader::read_file(path).map(|rows| rows.into_iter().map(|r| r.task.task_id));
    for id in ids.into_iter().flatten().filter(|id| twice.contains(&hash(id))) {
        places.entry(id.to_string()).or_default().push(shown.to_string());
    }
}

/// A problem for each task_id found in more than one place.
fn name_places(places: HashMap<String, Vec<String>>, f: &mut Findings) {
    let mut duplicates: Vec<_> = places.into_iter().filter(|(_, p)| p.len() > 1).collect();
    duplicates.sort();
    for (id, files) in duplicates {
        f.problems.push(format!("task_id {id} appears {} times: in {}", files.len(), files.join(", ")));
    }
}

/// `_staging/` holds nothing but the areas of writers that run.
fn check_staging(output_dir: &Path, f: &mut Findings) {
    let writers = crate::sink::store::staging::writers_running(output_dir);
    if writers > 0 {
        f.notes.push(format!("{writers} writer(s) running; their staging areas are theirs"));
    }
    let orphans = crate::sink::store::staging::orphans(output_dir);
    if !orphans.is_empty() {
        let names: Vec<String> = orphans.iter().map(|p| p.display().to_string()).collect();
        f.problems.push(format!("{}: left in _staging by a writer that is gone", names.join(", ")));
    }
}

impl std::fmt::Display for Findings {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dates = self.dates.as_ref().map(|(a, b)| format!(", {a} to {b}")).unwrap_or_default();
        writeln!(out, "read {} partition files, {} rows{dates}", self.files, self.rows)?;
        writeln!(out, "deleted: {} rows marked deleted upstream (kept, with deleted_at set)", self.deleted)?;
        match &self.history {
            Some(h) => writeln!(out, "history: {} versions in {} day files of task_history/", h.versions, h.days)?,
            None => writeln!(out, "history: none (no task_history/; storage.history off)")?,
        }
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        for problem in &self.problems {
            writeln!(out, "problem: {problem}")?;
        }
        if self.problems.is_empty() {
            writeln!(
                out,
                "ok: every file readable, schema as documented, sorted by (create_time, task_id), each row in the \
                 partition of its UTC day, no task_id twice, nothing stray under tasks/, nothing left in _staging/"
            )?;
            if self.history.is_some() {
                writeln!(
                    out,
                    "ok: in task_history/, one current version per task equal to its row in tasks/, versions back to \
                     back (no overlap, no gap)"
                )?;
            }
        }
        Ok(())
    }
}

mod history;

#[cfg(test)]
mod tests;
