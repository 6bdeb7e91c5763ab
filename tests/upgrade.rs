//! A newer tasksync over an older state database and data set, and the other way round:
//! an older database is migrated forward at first open; a newer one is refused, untouched.

mod common;

use std::path::Path;

use common::*;

/// The bytes of every file under `dir` (a state database and its WAL), by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_state_database_from_a_newer_tasksync_is_refused_with_exit_2_naming_both_versions_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = state_db(dir.path());
    drop(tasksync::state::State::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    // A rollback journal, so that nothing but an explicit write could change the file.
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    let before = snapshot(db.parent().unwrap());
    let config = config_file(dir.path(), "http://127.0.0.1:9", "", "[sync]\nstart = \"2021-10-01\"");
    for args in [vec!["sync"], vec!["sync", "--from", "2021-10-01", "--to", "2021-10-02"], vec!["status"]] {
        let out = bin().arg("--config").arg(&config).args(&args).output().unwrap();
        let line = last_stderr_line(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {line}");
        assert!(
            line.contains("has schema version 99, written by a newer tasksync")
                && line.contains(&format!("knows versions up to {}", tasksync::state::schema::VERSION))
                && line.contains(env!("CARGO_PKG_VERSION"))
                && line.contains(&db.display().to_string()),
            "{args:?}: {line}"
        );
        assert_eq!(snapshot(db.parent().unwrap()), before, "{args:?} wrote nothing into the newer database");
    }
}
