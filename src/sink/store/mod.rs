//! Where the data set's bytes go: [`Store`], the output directory or an S3-compatible
//! bucket, with this process's staging area ([`staging`]), the partition locks that keep
//! writers in several processes apart ([`lock`]), and the object-store client
//! ([`remote`]). It stages files, fetches a partition's stored version ([`Base`]), and
//! replaces a file: a rename and directory fsync locally, one conditional PUT on object
//! storage (one conditional PUT, `remote.rs`). When each of these happens is the commit's to say (`commit/`).

pub mod lock;
pub mod remote;
pub mod staging;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sink::SinkError;
use remote::Remote;
use staging::StagingArea;

/// The one file name of every partition.
pub const PART_FILE: &str = "part-0.parquet";

/// The output directory: `tasks/` for readers, a staging area and partition locks for
/// this writer.
pub struct Store {
    /// `{output_dir}/tasks`, what analysts read.
    tasks: PathBuf,
    /// `{output_dir}/task_history`, every version of each task (`transform/versions.rs`); `None`
    /// when `storage.history` is off.
    history: Option<PathBuf>,
    /// Days whose history this process last saw derived from their `tasks` file, with
    /// that file's version (on object storage, a window that writes nothing to a day whose
    /// `tasks` object still has that version then skips fetching its history).
    history_current: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// `{output_dir}/_locks`, one lock file per partition.
    locks: PathBuf,
    /// This process's area under `_staging/`, where files are written before they are
    /// renamed in.
    staging: StagingArea,
    /// Makes staging names unique within the process.
    counter: AtomicU64,
    /// Where the files live: here, or in an object store.
    backend: Backend,
}

/// Where a [`Store`]'s files live.
enum Backend {
    /// Under the output directory: a file is replaced by a rename and a directory fsync.
    Local,
    /// In an S3-compatible bucket (`s3://` output): a partition is fetched whole and
    /// replaced by one conditional PUT (`remote.rs`); the output directory is then only the
    /// local work directory (staging, locks).
    S3(Remote),
}

/// Which of a day's two files a staged file replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `tasks/create_date=D/part-0.parquet`, what analysts read.
    Tasks,
    /// `task_history/create_date=D/part-0.parquet`, every version of each task.
    History,
}

/// The stored version of a partition that a window merges with.
pub struct Base {
    /// The file to read: the partition's own, or its copy fetched into staging.
    pub path: PathBuf,
    /// The object's ETag when fetched from a store (`None`: there was no object).
    pub etag: Option<String>,
    /// Whether `path` is a fetched copy, removed when this is dropped.
    fetched: bool,
}

impl Drop for Base {
    fn drop(&mut self) {
        if self.fetched {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The local history of day `date` as the base of a derivation (unit tests).
#[cfg(test)]
pub(crate) fn local_history_base(sink: &Store, date: &str) -> Option<Base> {
    Some(Base { path: sink.history_file(date)?, etag: None, fetched: false })
}

/// A partition's key relative to the output: `tasks/create_date=D/part-0.parquet`.
pub fn partition_key(date: &str) -> String {
    format!("tasks/create_date={date}/{PART_FILE}")
}

/// A day's history key relative to the output: `task_history/create_date=D/part-0.parquet`.
pub fn history_object_key(date: &str) -> String {
    format!("task_history/create_date={date}/{PART_FILE}")
}

impl Store {
    /// Creates the directories if needed and this process's staging area, removing the
    /// areas of writers that are gone.
    pub fn open(output_dir: &Path) -> Result<Store, SinkError> {
        Store::open_with(output_dir, None)
    }

    /// [`Store::open`] for an output on object storage when `remote` is set: `output_dir`
    /// is then only the local work directory (staging and partition locks).
    pub fn open_with(output_dir: &Path, remote: Option<Remote>) -> Result<Store, SinkError> {
        let (tasks, locks) = (output_dir.join("tasks"), output_dir.join("_locks"));
        let dirs = if remote.is_none() { vec![&tasks, &locks] } else { vec![&locks] };
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(SinkError::io("create directory", dir))?;
        }
        let staging = StagingArea::open(output_dir)?;
        Ok(Store {
            tasks,
            history: None,
            history_current: Default::default(),
            locks,
            staging,
            counter: AtomicU64::new(0),
            backend: remote.map_or(Backend::Local, Backend::S3),
        })
    }

    /// Keeps `task_history/` beside `tasks/` (`storage.history`), creating it locally.
    pub fn with_history(mut self, on: bool) -> Result<Store, SinkError> {
        if !on {
            return Ok(self);
        }
        let dir = self.tasks.with_file_name("task_history");
        if !self.is_remote() {
            std::fs::create_dir_all(&dir).map_err(SinkError::io("create directory", &dir))?;
        }
        self.history = Some(dir);
        Ok(self)
    }

    /// Whether this process saw day `date`'s history derived from the version `tasks` of
    /// its `tasks` object (locally always false: the footer read that tells costs nothing
    /// there). Keyed by that version, so that a `tasks` object another process replaced
    /// since (a backfill beside the service, stopped between its two PUTs) is looked at.
    pub fn history_seen_current(&self, date: &str, tasks: &str) -> bool {
        self.is_remote() && self.history_current.lock().expect("never poisoned").get(date).is_some_and(|v| v == tasks)
    }

    /// Records that day `date`'s history is derived from version `tasks` of its `tasks`
    /// object, after its commit.
    pub fn saw_history_current(&self, date: &str, tasks: String) {
        self.history_current.lock().expect("never poisoned").insert(date.to_string(), tasks);
    }

    /// Forgets it, before a commit that may leave it lagging if it fails half-way.
    pub fn forget_history_current(&self, date: &str) {
        self.history_current.lock().expect("never poisoned").remove(date);
    }

    /// Whether `task_history/` is kept.
    pub fn keeps_history(&self) -> bool {
        self.history.is_some()
    }

    /// `task_history/create_date=D/part-0.parquet` (`None` with history off).
    pub fn history_file(&self, date: &str) -> Option<PathBuf> {
        Some(self.history.as_ref()?.join(format!("create_date={date}")).join(PART_FILE))
    }

    /// Where the history of day `date` stands now (see [`Store::base`]); `None` with
    /// history off.
    pub async fn history_base(&self, date: &str) -> Result<Option<Base>, SinkError> {
        let Some(local) = self.history_file(date) else { return Ok(None) };
        let Backend::S3(remote) = &self.backend else {
            return Ok(Some(Base { path: local, etag: None, fetched: false }));
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.staging.dir.join(format!("{date}.{n}.history.stored.parquet"));
        let mut base = Base { path, etag: None, fetched: true };
        base.etag = remote.fetch(&history_object_key(date), &base.path).await?;
        Ok(Some(base))
    }

    /// Where the partition `date` stands now, to merge with: the local file, or the
    /// object fetched into staging with its ETag (step 1 of the protocol in `commit/mod.rs`).
    pub async fn base(&self, date: &str) -> Result<Base, SinkError> {
        let Backend::S3(remote) = &self.backend else {
            return Ok(self.local_base(date));
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.staging.dir.join(format!("{date}.{n}.stored.parquet"));
        // Removed if the fetch fails or is cancelled half-way.
        let mut base = Base { path, etag: None, fetched: true };
        base.etag = remote.fetch(&partition_key(date), &base.path).await?;
        Ok(base)
    }

    /// The local partition file as the base of a merge.
    pub fn local_base(&self, date: &str) -> Base {
        Base { path: self.partition_file(date), etag: None, fetched: false }
    }

    /// Whether the output is on object storage.
    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// The object store, for an `s3://` output.
    pub fn remote(&self) -> Option<&Remote> {
        match &self.backend {
            Backend::S3(remote) => Some(remote),
            Backend::Local => None,
        }
    }

    /// This process's staging area (tests check that nothing is left in it).
    #[cfg(test)]
    pub(crate) fn staging_dir(&self) -> &Path {
        &self.staging.dir
    }

    /// The lock file of partition `date` (step 0 of the protocol).
    pub fn partition_lock(&self, date: &str) -> PathBuf {
        self.locks.join(format!("create_date={date}.lock"))
    }

    /// `tasks/create_date=D/part-0.parquet`.
    pub fn partition_file(&self, date: &str) -> PathBuf {
        self.tasks.join(format!("create_date={date}")).join(PART_FILE)
    }

    /// The stored rows of one partition; empty when it does not exist yet.
    #[cfg(test)]
    pub fn read_partition(&self, date: &str) -> Result<Vec<crate::row::StoredRow>, SinkError> {
        crate::sink::format::reader::read_file(&self.partition_file(date))
    }

    /// Replaces one partition with `rows` (stage, then rename in), as a window's commit would.
    #[cfg(test)]
    pub fn replace_partition(&self, date: &str, rows: &[crate::row::StoredRow]) -> Result<(), SinkError> {
        let staged = self.stage(date);
        let mut writer = crate::sink::format::writer::FileWriter::create(&staged.file)?;
        writer.write(rows)?;
        writer.finish()?;
        rename_in(&self.tasks, &self.partition_file(date), &staged.file.clone(), &staged.dir.clone(), "after_rename")?;
        let mut staged = staged;
        staged.committed = true;
        Ok(())
    }

    /// Fresh staging names for one partition; nothing is created yet. Dropping the
    /// [`Staged`] without committing it removes whatever was created under them.
    pub fn stage(&self, date: &str) -> Staged {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        Staged {
            file: self.staging.dir.join(format!("{date}.{n}.parquet")),
            dir: self.staging.dir.join(format!("create_date={date}.{n}")),
            committed: false,
        }
    }

    /// Makes a staged file, written and fsynced, the day's `target` file on a local store,
    /// blocking (step 4 of the protocol in `commit/`): a rename over it and an fsync of its
    /// directory (a new partition is built in staging and renamed in whole, so it never
    /// appears empty). Reaches the target's crash point right after the rename.
    pub fn rename_into_place(&self, date: &str, target: Target, mut staged: Staged) -> Result<(), SinkError> {
        let (root, file) = match target {
            Target::Tasks => (self.tasks.as_path(), self.partition_file(date)),
            Target::History => {
                let root = self.history.as_deref().expect("a history is replaced only while history is on");
                (root, self.history_file(date).expect("history is on"))
            }
        };
        rename_in(root, &file, &staged.file, &staged.dir, target.crash_point())?;
        staged.committed = true;
        Ok(())
    }
}

impl Target {
    /// The object's key of day `date` relative to the output.
    pub fn key(self, date: &str) -> String {
        match self {
            Target::Tasks => partition_key(date),
            Target::History => history_object_key(date),
        }
    }

    /// The crash point reached once a file of this kind is replaced.
    pub fn crash_point(self) -> &'static str {
        match self {
            Target::Tasks => "after_rename",
            Target::History => "after_history_rename",
        }
    }
}

/// A staged file renamed over `target` under `root` (see [`Store::rename_into_place`]).
fn rename_in(root: &Path, target: &Path, staged: &Path, staged_dir: &Path, point: &str) -> Result<(), SinkError> {
    let dir = target.parent().expect("a partition file has a directory");
    if dir.exists() {
        std::fs::rename(staged, target).map_err(SinkError::io("rename the staged file over", target))?;
        crate::crash::point(point);
        return fsync_dir(dir);
    }
    // A new partition: build its directory in staging, then move it in whole. Callers
    // hold the partition's lock, so nobody creates `dir` meanwhile.
    std::fs::create_dir(staged_dir).map_err(SinkError::io("create staging directory", staged_dir))?;
    let inner = staged_dir.join(PART_FILE);
    std::fs::rename(staged, &inner).map_err(SinkError::io("move the staged file into", staged_dir))?;
    fsync_dir(staged_dir)?;
    std::fs::rename(staged_dir, dir).map_err(SinkError::io("rename the staged partition to", dir))?;
    crate::crash::point(point);
    fsync_dir(root)
}

/// The staging names of one partition being rewritten.
pub struct Staged {
    /// The new file, written and fsynced here before it is renamed in.
    pub file: PathBuf,
    /// The directory a new partition is built in before it is renamed into `tasks/`.
    dir: PathBuf,
    /// Set once renamed in; until then dropping this removes the staging entries, so a
    /// failed write leaves nothing behind even in a long-running daemon.
    committed: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.file);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// fsyncs a directory so that a rename or create inside it survives a crash.
fn fsync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(SinkError::io("fsync directory", dir))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
