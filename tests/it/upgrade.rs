//! A newer tasksync over an older state database and data set, and the other way round:
//! an older database is migrated forward at first open; a newer one is refused, untouched.

use std::path::Path;

use crate::common::*;

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
                && line.contains(&format!("knows versions up to {}", tasksync::state::migrations::VERSION))
                && line.contains(env!("CARGO_PKG_VERSION"))
                && line.contains(&db.display().to_string()),
            "{args:?}: {line}"
        );
        assert_eq!(snapshot(db.parent().unwrap()), before, "{args:?} wrote nothing into the newer database");
    }
}

/// The data of every fixture (tests/fixtures/make.sh): seed 71, 900 tasks from 2021-10-01
/// to the simulator's "now", 2021-10-04 00:00 UTC, plus the hour `simulate` adds after it.
fn fixture_spec() -> tasksync::simulator::dataset::DatasetSpec {
    tasksync::simulator::dataset::DatasetSpec {
        seed: 71,
        tasks: 900,
        start: D0,
        end: D0 + 3 * DAY + 3600,
        hot_hour: None,
        bad_per_million: 0,
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_release_reads_and_syncs_over_what_each_earlier_release_wrote_exactly() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut releases: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("state/state.db").is_file())
        .collect();
    releases.sort();
    assert!(!releases.is_empty(), "at least one earlier release's fixture is kept under {}", fixtures.display());
    for release in releases {
        let name = release.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&release, dir.path());
        // Six hours after the fixture was written: tasks moved on, new ones were created.
        let now = D0 + 3 * DAY + 6 * 3600;
        let sim = start_sim(fixture_spec(), tasksync::simulator::SimOptions::default(), now).await;
        let cfg = with_sync(config(&sim.url, dir.path(), SK, "auth = \"none\""));
        let (out, clock) = (dir.path().join("out"), tasksync::time::system_clock());

        // Read-only first: status and verify read the old database and files as they are.
        let report = tasksync::status::report(&cfg, clock()).unwrap().expect("the fixture has a state database");
        assert!(report.cursor.is_some() && !report.passes.is_empty(), "{name}: {report:?}");
        let findings = tasksync::verify::verify(&out);
        assert!(findings.problems.is_empty(), "{name}: {findings}");
        let before = stored(&out).len();
        assert!(before > 500, "{name}: the fixture holds its rows ({before})");

        // Then a pass of this release over it: the schema migrated, the rows merged, exact.
        tasksync::sync::run_incremental(cfg.clone(), clock.clone(), D0).await.unwrap();
        assert_exact(&out, &sim.sim.truth(D0, now - 120, false));
        let s = tasksync::state::State::open_read_only(&cfg.storage.state_db).unwrap();
        assert_eq!(s.version(), tasksync::state::migrations::VERSION, "{name}: migrated to this release's schema");
        let findings = tasksync::verify::verify(&out);
        assert!(findings.problems.is_empty(), "{name} after the pass: {findings}");
        // The release before kept no history: the days this pass wrote have one now, the
        // others are counted as not seeded yet.
        let h = findings.history.as_ref().expect("task_history/ exists after a pass of this release");
        let days = std::fs::read_dir(out.join("tasks")).unwrap().count();
        assert!(h.days >= 1 && h.days + h.missing.len() == days, "{name}: {h:?} of {days} days");
    }
}
