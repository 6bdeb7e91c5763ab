//! File locks that let writers share one output: one per writing process (its staging
//! area's owner lock) and one per partition, taken only while that partition is
//! rewritten. Both live under the output directory, outside `tasks/`, so that every
//! config writing there sees them; both are `flock`s, which the kernel drops when their
//! holder dies (kill -9 included), so a crash never leaves a stale lock.
//!
//! Nobody needs a lock to read: whether a writer runs is read from the kernel's lock
//! table ([`held`]), without opening any lock file for writing.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("cannot use lock file {lock}: {source}")]
pub struct LockError {
    /// The lock file.
    pub lock: PathBuf,
    /// What the filesystem said.
    pub source: std::io::Error,
}

/// A held lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct Held {
    /// The locked file; closing it releases the lock.
    _file: File,
}

/// Opens (creating) `path` for locking.
fn open(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError { lock: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)
}

/// Takes the lock on `path` now, or `None` when someone holds it.
pub fn try_take(path: &Path) -> Result<Option<Held>, LockError> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Held { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(LockError { lock: path.to_path_buf(), source }),
    }
}

/// Takes the lock on `path`, waiting for its holder without blocking a thread: the
/// future can be dropped while it waits (nothing is held then).
pub async fn take(path: &Path) -> Result<Held, LockError> {
    take_noting(path, || {}).await
}

/// [`take`], calling `waiting` every time it finds the lock held (at least every 200 ms).
/// A holder is always a live process (the kernel drops the locks of the dead), so waiting
/// for it is progress: the service's watchdog is told so through `waiting`.
pub async fn take_noting(path: &Path, waiting: impl Fn()) -> Result<Held, LockError> {
    let mut wait = Duration::from_millis(5);
    loop {
        if let Some(held) = try_take(path)? {
            return Ok(held);
        }
        waiting();
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

/// Whether a process holds a lock on `path`, found without taking it, opening nothing
/// for writing and changing no byte: the kernel's table of file locks (`/proc/locks`) is
/// searched for the file's device and inode. `false` where that table cannot be read.
///
/// The kernel prints that table a page at a time, and a lock released between two pages
/// (by any process) shifts the lines after it, so one read can miss a line that was there
/// throughout: seen with the test suite's many short-lived locks. A miss is read again, a
/// few milliseconds apart (40 ms at most, paid only for a lock nobody holds).
pub fn held(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return false };
    let dev = meta.dev();
    let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::read_to_string("/proc/locks")
            .is_ok_and(|table| table.lines().any(|l| l.split_whitespace().any(|w| w == id)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_then_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let first = try_take(&path).unwrap().expect("free");
        assert!(try_take(&path).unwrap().is_none(), "held by another open file");
        drop(first);
        assert!(try_take(&path).unwrap().is_some(), "free again once dropped");
    }

    #[test]
    fn a_held_lock_is_seen_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        assert!(!held(&path), "no file, no holder");
        let lock = try_take(&path).unwrap().unwrap();
        let before = (std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().modified().unwrap());
        assert!(held(&path));
        assert_eq!(before, (std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().modified().unwrap()));
        drop(lock);
        assert!(!held(&path), "released");
    }

    #[tokio::test]
    async fn waiting_for_a_lock_ends_when_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let first = try_take(&path).unwrap().unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(first);
        });
        tokio::time::timeout(Duration::from_secs(5), take(&path)).await.expect("taken once released").unwrap();
        release.await.unwrap();
    }
}
