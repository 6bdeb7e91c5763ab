//! The one-writer lock: an exclusive file lock beside the state database, held for the
//! life of a `sync` or `run`. A second process is refused with the holder's pid.
//!
//! The kernel drops the lock when the holder dies (kill -9 included), so a crash never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another tasksync process{holder} is already working on {state}; wait for it to finish or stop it (lock file {lock})"
    )]
    Held { holder: String, state: PathBuf, lock: PathBuf },
    #[error("cannot use lock file {lock}: {source}")]
    Io { lock: PathBuf, source: std::io::Error },
}

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct WriterLock {
    /// The locked file; closing it releases the lock.
    _file: File,
}

/// `state.db` -> `state.db.lock`.
pub fn lock_path(state_db: &Path) -> PathBuf {
    let mut name = state_db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock beside `state_db`, or refuses naming the process that holds it.
pub fn acquire(state_db: &Path) -> Result<WriterLock, LockError> {
    let lock = lock_path(state_db);
    let io = |source| LockError::Io { lock: lock.clone(), source };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let holder = if pid.is_empty() { String::new() } else { format!(" (pid {pid})") };
            return Err(LockError::Held { holder, state: state_db.to_path_buf(), lock });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .map_err(io)?;
    Ok(WriterLock { _file: file })
}

/// Whether a process holds the lock beside `state_db`, found without taking it, opening
/// nothing for writing and changing no byte: the kernel's table of file locks
/// (`/proc/locks`) is searched for the lock file's device and inode. `false` where that
/// table cannot be read.
pub fn writer_running(state_db: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(lock_path(state_db)) else { return false };
    let dev = meta.dev();
    let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    std::fs::read_to_string("/proc/locks")
        .is_ok_and(|table| table.lines().any(|l| l.split_whitespace().any(|w| w == id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let held = acquire(&db).unwrap();
        let err = acquire(&db).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(held);
        acquire(&db).expect("the lock is free again once dropped");
    }

    #[test]
    fn a_running_writer_is_seen_without_touching_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        assert!(!writer_running(&db), "no lock file, no writer");
        let held = acquire(&db).unwrap();
        let before =
            (std::fs::read(lock_path(&db)).unwrap(), std::fs::metadata(lock_path(&db)).unwrap().modified().unwrap());
        assert!(writer_running(&db));
        let after =
            (std::fs::read(lock_path(&db)).unwrap(), std::fs::metadata(lock_path(&db)).unwrap().modified().unwrap());
        assert_eq!(before, after, "the lock file is untouched");
        drop(held);
        assert!(!writer_running(&db), "released");
    }
}
