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
///
/// Between our `open` and our `flock`, a writer cleaning stale staging areas can take the
/// lock, find the file ownerless and unlink it: our lock would then be on a file nobody
/// else can find. So a lock counts only when `path` still names the file locked; otherwise
/// the file is opened anew and locked again.
pub fn try_take(path: &Path) -> Result<Option<Held>, LockError> {
    loop {
        match lock_if_current(open(path)?, path)? {
            Locked::Held(held) => return Ok(Some(held)),
            Locked::Busy => return Ok(None),
            Locked::Replaced => continue,
        }
    }
}

/// What locking an opened lock file found.
enum Locked {
    /// Taken, and `path` names the file locked.
    Held(Held),
    /// Someone else holds it.
    Busy,
    /// Taken, but the file was unlinked or replaced after it was opened.
    Replaced,
}

/// Locks `file`, opened from `path`, and checks that `path` still names it.
fn lock_if_current(file: File, path: &Path) -> Result<Locked, LockError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source| LockError { lock: path.to_path_buf(), source };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Locked::Busy),
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    let locked = file.metadata().map_err(io)?;
    match std::fs::metadata(path) {
        Ok(now) if (now.dev(), now.ino()) == (locked.dev(), locked.ino()) => Ok(Locked::Held(Held { _file: file })),
        Ok(_) => Ok(Locked::Replaced),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Locked::Replaced),
        Err(e) => Err(io(e)),
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
/// The table names a file by its super block's device, which is not always the `st_dev`
/// that `stat` reports: a btrfs subvolume reports an anonymous device of its own. The device
/// of the mount holding the file (`/proc/self/mountinfo`) is the super block's, so both are
/// looked for.
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
    let mut ids = vec![format!("{major:02x}:{minor:02x}:{}", meta.ino())];
    if let Some((major, minor)) = mount_device(path) {
        ids.push(format!("{major:02x}:{minor:02x}:{}", meta.ino()));
    }
    (0..5).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::read_to_string("/proc/locks")
            .is_ok_and(|table| table.lines().any(|l| l.split_whitespace().any(|w| ids.iter().any(|id| id == w))))
    })
}

/// The device (major, minor) of the mount that holds `path`: the longest mount point in
/// `/proc/self/mountinfo` that contains it.
fn mount_device(path: &Path) -> Option<(u64, u64)> {
    let path = std::fs::canonicalize(path).ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, (u64, u64))> = None;
    for line in table.lines() {
        // id parent major:minor root mount-point ...; spaces in a mount point are `\040`.
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(dev), Some(point)) = (fields.get(2), fields.get(4)) else { continue };
        let point = point.replace("\\040", " ");
        let Some((major, minor)) = dev.split_once(':') else { continue };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else { continue };
        if path.starts_with(&point) && best.is_none_or(|(len, _)| point.len() >= len) {
            best = Some((point.len(), (major, minor)));
        }
    }
    best.map(|(_, dev)| dev)
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

    #[test]
    fn a_lock_file_unlinked_between_open_and_lock_is_not_trusted_and_a_new_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w-1-1.lock");
        let opened = open(&path).unwrap();
        // A stale-area cleaner takes the lock first, finds no owner and unlinks the file.
        let cleaner = try_take(&path).unwrap().unwrap();
        std::fs::remove_file(&path).unwrap();
        drop(cleaner);
        assert!(
            matches!(lock_if_current(opened, &path).unwrap(), Locked::Replaced),
            "a lock on a file nobody can find"
        );
        let held_now = try_take(&path).unwrap().expect("a fresh file is locked");
        assert!(path.exists() && held(&path), "the lock others see is the one held");
        drop(held_now);
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
