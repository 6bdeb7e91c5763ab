use super::*;
use crate::row::{StoredRow, TaskRow};
use crate::sink::writer::Sink;

const D0: i64 = 1_633_046_400; // 2021-10-01

fn row(id: &str, t: i64) -> StoredRow {
    StoredRow { task: TaskRow::example(id, t), first_seen_at: 1, changed_at: 1, observed_seq: 1, deleted_at: None }
}

/// Two good partitions.
fn good() -> (tempfile::TempDir, Sink) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::open(dir.path()).unwrap();
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
