use super::*;
use crate::row::{StoredRow, TaskRow};
use crate::sink::store::Store;

const D0: i64 = 1_633_046_400; // 2021-10-01

fn row(id: &str, t: i64) -> StoredRow {
    StoredRow { task: TaskRow::example(id, t), first_seen_at: 1, changed_at: 1, observed_seq: 1, deleted_at: None }
}

/// Two good partitions.
fn good() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Store::open(dir.path()).unwrap();
    sink.replace_partition("2021-10-01", &[row("a", D0 + 1), row("b", D0 + 2)]).unwrap();
    sink.replace_partition("2021-10-02", &[row("c", D0 + 86_400)]).unwrap();
    (dir, sink)
}

#[test]
fn a_good_data_set_passes_with_a_summary() {
    let (dir, _sink) = good();
    let f = verify(dir.path());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!((f.files, f.rows), (2, 3));
    let text = f.to_string();
    assert!(
        text.contains("read 2 partition files, 3 rows, 2021-10-01 to 2021-10-02") && text.contains("ok:"),
        "{text}"
    );
}

#[test]
fn a_task_id_in_two_partitions_is_named_with_both_files() {
    let (dir, sink) = good();
    sink.replace_partition("2021-10-03", &[row("a", D0 + 2 * 86_400)]).unwrap();
    let f = verify(dir.path());
    assert_eq!(f.problems.len(), 1, "{:?}", f.problems);
    let p = &f.problems[0];
    assert!(p.starts_with("task_id a appears 2 times") && p.contains("2021-10-01") && p.contains("2021-10-03"), "{p}");
}

#[test]
fn an_unsorted_file_and_a_row_in_the_wrong_partition_are_named() {
    let (dir, sink) = good();
    sink.replace_partition("2021-10-03", &[row("z", D0 + 2 * 86_400 + 9), row("y", D0 + 2 * 86_400 + 1)]).unwrap();
    sink.replace_partition("2021-10-04", &[row("w", D0)]).unwrap();
    let f = verify(dir.path());
    let all = f.problems.join("\n");
    assert!(
        all.contains("create_date=2021-10-03/part-0.parquet: not sorted by (create_time, task_id) at task_id y"),
        "{all}"
    );
    assert!(all.contains("create_date=2021-10-04/part-0.parquet: task_id w was created on 2021-10-01"), "{all}");
}

#[test]
fn stray_files_and_leftover_staging_are_problems_but_a_running_writers_area_is_not() {
    let (dir, sink) = good();
    std::fs::write(dir.path().join("tasks/notes.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("tasks/create_date=2021-10-01/part-1.parquet"), b"x").unwrap();
    std::fs::write(dir.path().join("_staging/2021-10-01.1.0.parquet"), b"half").unwrap();
    let f = verify(dir.path());
    let all = f.problems.join("\n");
    assert!(all.contains("notes.txt: stray entry under tasks/"), "{all}");
    assert!(all.contains("part-1.parquet: stray entry in a partition"), "{all}");
    assert!(all.contains("2021-10-01.1.0.parquet: left in _staging by a writer that is gone"), "{all}");
    assert!(!all.contains("/w-"), "the running writer's area is not a problem: {all}");
    // A writer that died: its area stays, its lock free.
    std::fs::create_dir_all(dir.path().join("_staging/w-9-9")).unwrap();
    std::fs::write(dir.path().join("_staging/w-9-9.lock"), b"").unwrap();
    let gone = verify(dir.path()).problems.join("\n");
    assert!(gone.contains("/w-9-9") && gone.contains("left in _staging by a writer that is gone"), "{gone}");
    drop(sink);
}

#[test]
fn a_corrupt_file_or_a_missing_column_is_named() {
    let (dir, _sink) = good();
    std::fs::write(dir.path().join("tasks/create_date=2021-10-02/part-0.parquet"), b"not parquet").unwrap();
    let f = verify(dir.path());
    assert!(
        f.problems[0].contains("create_date=2021-10-02/part-0.parquet: not a readable Parquet file"),
        "{:?}",
        f.problems
    );
}

#[test]
fn rows_marked_deleted_upstream_are_counted_not_failed() {
    let (dir, sink) = good();
    let gone = StoredRow { deleted_at: Some(5), ..row("d", D0 + 3) };
    sink.replace_partition("2021-10-01", &[row("a", D0 + 1), row("b", D0 + 2), gone]).unwrap();
    let f = verify(dir.path());
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!((f.rows, f.deleted), (4, 1));
    assert!(f.to_string().contains("deleted: 1 rows marked deleted upstream"), "{f}");
}

mod history {
    use super::*;
    use crate::sink::format::history_file::write_history;
    use crate::sink::format::reader::version_of;
    use crate::transform::versions::HistoryRow;

    fn v(row: StoredRow, from: i64, to: Option<i64>) -> HistoryRow {
        HistoryRow { row, valid_from: from, valid_to: to }
    }

    /// A day whose task `a` went from running to success, `b` seen once; `edit` changes
    /// the history before it is written.
    fn day_with_history(edit: impl FnOnce(&mut Vec<HistoryRow>)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let sink = Store::open(dir.path()).unwrap();
        let done = StoredRow { changed_at: 2000, observed_seq: 2, ..row("a", D0 + 1) };
        let mut running = row("a", D0 + 1);
        running.task.status = Some("running".into());
        sink.replace_partition("2021-10-01", &[done.clone(), row("b", D0 + 2)]).unwrap();
        let mut h = vec![v(running, 1, Some(2000)), v(done, 2000, None), v(row("b", D0 + 2), 1, None)];
        edit(&mut h);
        let version = version_of(&sink.partition_file("2021-10-01")).unwrap();
        write_history(&dir.path().join("task_history/create_date=2021-10-01/part-0.parquet"), &h, &version);
        dir
    }

    #[test]
    fn a_history_that_follows_its_tasks_file_passes_and_is_counted() {
        let dir = day_with_history(|_| {});
        let f = verify(dir.path());
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        let h = f.history.as_ref().unwrap();
        assert_eq!((h.days, h.versions), (1, 3));
        assert!(f.to_string().contains("history: 3 versions in 1 day files"), "{f}");
    }

    #[test]
    fn overlapping_versions_are_named_with_their_task() {
        let dir = day_with_history(|h| h[0].valid_to = Some(2500));
        let f = verify(dir.path());
        assert!(f.problems.iter().any(|p| p.contains("consecutive versions overlap: task_id a")), "{:?}", f.problems);
    }

    #[test]
    fn a_current_version_that_disagrees_with_tasks_is_named() {
        let dir = day_with_history(|h| h[2].row.task.status = Some("fail".into()));
        let f = verify(dir.path());
        assert!(
            f.problems
                .iter()
                .any(|p| p.contains("the current version differs from the task's row in tasks/: task_id b")),
            "{:?}",
            f.problems
        );
    }

    #[test]
    fn a_gap_and_a_task_without_a_current_version_are_named() {
        let dir = day_with_history(|h| {
            h[0].valid_to = Some(1500);
            h.pop();
        });
        let f = verify(dir.path());
        let all = f.problems.join("\n");
        assert!(all.contains("a gap between consecutive versions: task_id a"), "{all}");
        assert!(all.contains("a task of the day has no current version: task_id b"), "{all}");
    }

    #[test]
    fn a_history_behind_its_tasks_file_is_a_note_and_one_ahead_of_it_a_problem() {
        let dir = day_with_history(|_| {});
        let sink = Store::open(dir.path()).unwrap();
        let newer = StoredRow { changed_at: 3000, observed_seq: 3, ..row("a", D0 + 1) };
        sink.replace_partition("2021-10-01", &[newer, row("b", D0 + 2)]).unwrap();
        let f = verify(dir.path());
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        assert!(f.notes.iter().any(|n| n.contains("it lags")), "{:?}", f.notes);

        // tasks/ restored from before the history's last version, task_history/ not.
        sink.replace_partition("2021-10-01", &[row("a", D0 + 1), row("b", D0 + 2)]).unwrap();
        let f = verify(dir.path());
        let all = f.problems.join("\n");
        assert!(all.contains("newer than the day's tasks file (2:1)") && all.contains("move it aside"), "{all}");
    }

    #[test]
    fn a_day_without_history_is_a_note_not_a_problem() {
        let dir = day_with_history(|_| {});
        let sink = Store::open(dir.path()).unwrap();
        sink.replace_partition("2021-10-02", &[row("c", D0 + 86_400)]).unwrap();
        let f = verify(dir.path());
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        assert!(
            f.notes.iter().any(|n| n.contains("no file for 1 day(s) of tasks/, first 2021-10-02")),
            "{:?}",
            f.notes
        );
    }
}

mod moved_history {
    use super::*;
    use crate::sink::format::history_file::write_history;
    use crate::sink::format::reader::version_of;
    use crate::transform::versions::HistoryRow;

    /// Task `a` moved from D0+1 to D0+5 and back: its versions are at two places.
    fn moved_there_and_back(current_at_home: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let sink = Store::open(dir.path()).unwrap();
        let v = |t: i64, seq: i64| StoredRow { observed_seq: seq, changed_at: seq, ..row("a", t) };
        sink.replace_partition("2021-10-01", &[v(D0 + 1, 3)]).unwrap();
        let mut h = vec![
            HistoryRow { row: v(D0 + 1, 1), valid_from: 1, valid_to: Some(2) },
            HistoryRow { row: v(D0 + 1, 3), valid_from: 3, valid_to: None },
            HistoryRow { row: v(D0 + 5, 2), valid_from: 2, valid_to: Some(3) },
        ];
        if !current_at_home {
            h[1].valid_to = Some(4);
        }
        let version = version_of(&sink.partition_file("2021-10-01")).unwrap();
        write_history(&dir.path().join("task_history/create_date=2021-10-01/part-0.parquet"), &h, &version);
        dir
    }

    #[test]
    fn a_task_moved_there_and_back_within_its_day_has_no_gap() {
        let f = verify(moved_there_and_back(true).path());
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[test]
    fn a_task_whose_place_holds_only_closed_versions_is_named() {
        let f = verify(moved_there_and_back(false).path());
        let all = f.problems.join("\n");
        assert!(all.contains("a task of the day has no current version: task_id a"), "{all}");
    }
}
