//! The staging areas of `{output_dir}/_staging/`: one per writing process, so that writers
//! sharing an output (a backfill beside the service, two configs on one data set) never
//! touch each other's files.
//!
//! A writer's area is `_staging/w-<pid>-<nanos>/`, owned through a lock on
//! `_staging/w-<pid>-<nanos>.lock` held for the process's life. The lock is taken before
//! the directory exists, so a directory whose lock is free (or missing) has no owner:
//! its writer died, and the next writer to start removes it. Nothing else is removed.

use std::path::{Path, PathBuf};

use crate::sink::SinkError;
use crate::sink::store::lock::{Held, LockError, held, try_take};

/// This process's staging area.
#[derive(Debug)]
pub struct StagingArea {
    /// `_staging/w-<pid>-<nanos>/`: this process's files, and only its.
    pub dir: PathBuf,
    /// The owner lock, held for the process's life.
    _owner: Held,
}

fn lock_error(e: LockError) -> SinkError {
    SinkError::Io { action: "lock", path: e.lock, source: e.source }
}

impl StagingArea {
    /// Creates this process's area and removes the areas of writers that are gone.
    pub fn open(output_dir: &Path) -> Result<StagingArea, SinkError> {
        let root = output_dir.join("_staging");
        std::fs::create_dir_all(&root).map_err(SinkError::io("create directory", &root))?;
        let (name, owner) = own_lock(&root)?;
        let dir = root.join(&name);
        std::fs::create_dir(&dir).map_err(SinkError::io("create directory", &dir))?;
        remove_stale(&root, &name)?;
        Ok(StagingArea { dir, _owner: owner })
    }
}

/// A new, unique staging name and its lock. A fresh lock file found held was taken by
/// another writer's cleanup in the instant between our open and our lock (it found the
/// file ownerless and is unlinking it), so another name is tried.
fn own_lock(root: &Path) -> Result<(String, Held), SinkError> {
    let mut attempts = 0;
    loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("w-{}-{nanos}", std::process::id());
        let lock = root.join(format!("{name}.lock"));
        if let Some(owner) = try_take(&lock).map_err(lock_error)? {
            return Ok((name, owner));
        }
        attempts += 1;
        if attempts == 100 {
            let source = std::io::Error::other("every fresh staging lock tried was held by someone else");
            return Err(SinkError::Io { action: "lock", path: lock, source });
        }
    }
}

impl Drop for StagingArea {
    /// A writer that ends cleanly leaves nothing: its area, then (still holding it) its
    /// lock file. One that dies leaves both, for the next writer to remove.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("lock"));
    }
}

/// Removes what writers that are gone left in `root`: areas whose lock is free or
/// missing, their lock files, and entries of the older single-writer layout.
fn remove_stale(root: &Path, own: &str) -> Result<(), SinkError> {
    for entry in std::fs::read_dir(root).map_err(SinkError::io("list", root))? {
        let path = entry.map_err(SinkError::io("list", root))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == own || name == format!("{own}.lock") {
            continue;
        }
        let stale = match name.strip_suffix(".lock") {
            // Taking the lock proves its owner gone; held while the area and then the lock
            // file are removed, so a writer that opened this file just now finds it gone
            // once it locks (see `lock::try_take`).
            Some(area) if area.starts_with("w-") => {
                if let Some(_gone) = try_take(&path).map_err(lock_error)? {
                    remove(&root.join(area))?;
                    remove(&path)?;
                }
                false
            }
            _ if name.starts_with("w-") => !root.join(format!("{name}.lock")).exists(),
            _ => true,
        };
        if stale {
            remove(&path)?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), SinkError> {
    let removed = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(SinkError::Io { action: "remove stale staging entry", path: path.to_path_buf(), source: e })
        }
        _ => Ok(()),
    }
}

/// How many writers hold a staging area in `output_dir` now (read from the kernel's lock
/// table; no lock taken, no file written).
pub fn writers_running(output_dir: &Path) -> usize {
    let root = output_dir.join("_staging");
    let locks = std::fs::read_dir(&root).into_iter().flatten().flatten().map(|e| e.path());
    locks.filter(|p| p.extension().is_some_and(|e| e == "lock") && held(p)).count()
}

/// Entries of `_staging/` that belong to no running writer: what a crash left and the
/// next writer will remove.
pub fn orphans(output_dir: &Path) -> Vec<PathBuf> {
    let root = output_dir.join("_staging");
    let entries: Vec<PathBuf> = std::fs::read_dir(&root).into_iter().flatten().flatten().map(|e| e.path()).collect();
    entries
        .into_iter()
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let owner = if name.ends_with(".lock") { p.clone() } else { root.join(format!("{name}.lock")) };
            !held(&owner)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_writer_has_its_own_area_and_cleans_only_areas_whose_owner_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let a = StagingArea::open(dir.path()).unwrap();
        std::fs::write(a.dir.join("x.parquet"), b"being written").unwrap();
        // A writer that died: its lock file is free.
        std::fs::create_dir_all(dir.path().join("_staging/w-1-1")).unwrap();
        std::fs::write(dir.path().join("_staging/w-1-1/y.parquet"), b"half").unwrap();
        std::fs::write(dir.path().join("_staging/w-1-1.lock"), b"").unwrap();
        // The older single-writer layout.
        std::fs::write(dir.path().join("_staging/2021-10-01.1.0.parquet"), b"half").unwrap();
        assert_eq!(writers_running(dir.path()), 1);
        assert_eq!(orphans(dir.path()).len(), 3, "{:?}", orphans(dir.path()));

        let b = StagingArea::open(dir.path()).unwrap();
        assert!(a.dir.join("x.parquet").exists(), "a running writer's files are left alone");
        assert!(!dir.path().join("_staging/w-1-1").exists() && !dir.path().join("_staging/w-1-1.lock").exists());
        assert!(!dir.path().join("_staging/2021-10-01.1.0.parquet").exists());
        assert_eq!(writers_running(dir.path()), 2);
        assert!(orphans(dir.path()).is_empty());
        drop(b);
        assert!(orphans(dir.path()).is_empty(), "a writer that ends cleanly leaves nothing");
        assert_eq!(std::fs::read_dir(dir.path().join("_staging")).unwrap().count(), 2, "only a's area and lock");
    }
}
