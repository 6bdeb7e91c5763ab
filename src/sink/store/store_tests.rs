use super::*;
use crate::row::{StoredRow, TaskRow};

fn row(id: &str) -> StoredRow {
    let task = TaskRow {
        err_message: Some("ok".into()),
        src_bitrate: Some(3898.93),
        dst_bitrate: Some(437.01),
        template_id: Some("t1".into()),
        input: Some("in".into()),
        input_url: Some("https://x/y.mp4".into()),
        region: Some("cn".into()),
        region_type: Some("oss".into()),
        ..TaskRow::example(id, 1_633_046_400)
    };
    StoredRow {
        task,
        first_seen_at: 1_633_046_500_000_000,
        changed_at: 1_633_046_600_000_000,
        observed_seq: 3,
        deleted_at: None,
    }
}

#[test]
fn a_partition_round_trips_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Store::open(dir.path()).unwrap();
    let rows = vec![row("a"), row("b")];
    sink.replace_partition("2021-10-01", &rows).unwrap();
    assert_eq!(sink.read_partition("2021-10-01").unwrap(), rows);
    assert!(sink.read_partition("2021-10-02").unwrap().is_empty());
    assert_eq!(std::fs::read_dir(sink.staging_dir()).unwrap().count(), 0, "no staging file is left behind");
}

#[test]
fn replacing_keeps_one_file_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Store::open(dir.path()).unwrap();
    sink.replace_partition("2021-10-01", &[row("a")]).unwrap();
    sink.replace_partition("2021-10-01", &[row("a"), row("b")]).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path().join("tasks/create_date=2021-10-01")).unwrap().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(sink.read_partition("2021-10-01").unwrap().len(), 2);
}

#[test]
fn stale_staging_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("_staging/create_date=2021-10-02.1.1")).unwrap();
    std::fs::write(dir.path().join("_staging/2021-10-01.1.0.parquet"), b"half").unwrap();
    std::fs::write(dir.path().join("_staging/create_date=2021-10-02.1.1/part-0.parquet"), b"whole").unwrap();
    let sink = Store::open(dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(sink.staging_dir()).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(dir.path().join("_staging")).unwrap().count(), 2, "only this writer's area and lock");
    drop(sink);
    assert_eq!(std::fs::read_dir(dir.path().join("_staging")).unwrap().count(), 0, "removed when it ends");
}

#[test]
fn a_corrupt_partition_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Store::open(dir.path()).unwrap();
    let path = sink.partition_file("2021-10-01");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"not parquet").unwrap();
    let err = sink.read_partition("2021-10-01").unwrap_err().to_string();
    assert!(err.contains("part-0.parquet"), "{err}");
}
