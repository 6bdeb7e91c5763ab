use super::*;
use crate::row::TaskRow;

const T0: i64 = 1_633_046_400;

fn stored(id: &str, create: i64, status: &str, seq: i64) -> StoredRow {
    let task = TaskRow { status: Some(status.into()), ..TaskRow::example(id, create) };
    StoredRow { task, first_seen_at: 1, changed_at: seq * 1000, observed_seq: seq, deleted_at: None }
}

/// Runs [`derive`] over in-memory rows, second pass included.
fn run(history: Vec<HistoryRow>, tasks: Vec<StoredRow>) -> (Vec<HistoryRow>, Derived) {
    let mut out = Vec::new();
    let d = derive(history.into_iter().map(Ok::<_, ()>), tasks.into_iter().map(Ok), |r| {
        out.push(r);
        Ok(())
    })
    .unwrap();
    let out = out.into_iter().map(|r| close_late(r, &d.late_closes)).collect();
    (out, d)
}

fn current(rows: &[HistoryRow], id: &str) -> Vec<HistoryRow> {
    rows.iter().filter(|r| r.row.task.task_id == id && r.valid_to.is_none()).cloned().collect()
}

#[test]
fn a_first_derivation_opens_one_current_version_per_task() {
    let tasks = vec![stored("a", T0, "running", 1), stored("b", T0 + 5, "success", 1)];
    let (h, d) = run(vec![], tasks.clone());
    assert_eq!(d.opened, 2);
    assert_eq!(h.iter().map(|r| r.row.clone()).collect::<Vec<_>>(), tasks);
    assert!(h.iter().all(|r| r.valid_to.is_none() && r.valid_from == r.row.changed_at));
}

#[test]
fn deriving_again_from_the_same_tasks_file_changes_nothing() {
    let tasks = vec![stored("a", T0, "running", 1), stored("b", T0 + 5, "success", 1)];
    let (h1, _) = run(vec![], tasks.clone());
    let (h2, d) = run(h1.clone(), tasks);
    assert_eq!(h2, h1);
    assert_eq!(d.opened, 0);
}

#[test]
fn a_changed_row_closes_the_current_version_where_the_next_one_opens() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "running", 1), stored("b", T0 + 5, "pending", 1)]);
    let (h2, d) = run(h1, vec![stored("a", T0, "success", 4), stored("b", T0 + 5, "pending", 1)]);
    assert_eq!(d.opened, 1);
    let a: Vec<_> = h2.iter().filter(|r| r.row.task.task_id == "a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].valid_from, a[0].valid_to), (1000, Some(4000)));
    assert_eq!((a[1].valid_from, a[1].valid_to), (4000, None));
    assert_eq!(a[1].row.task.status.as_deref(), Some("success"));
    assert_eq!(h2.iter().filter(|r| r.row.task.task_id == "b").count(), 1, "b did not change");
}

#[test]
fn a_deletion_closes_the_last_live_version_and_opens_a_deleted_one() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "success", 1)]);
    let gone = StoredRow { deleted_at: Some(7000), changed_at: 7000, observed_seq: 7, ..stored("a", T0, "success", 1) };
    let (h2, _) = run(h1, vec![gone.clone()]);
    assert_eq!(h2.len(), 2);
    assert_eq!(h2[0].valid_to, Some(7000));
    assert_eq!(h2[0].row.deleted_at, None);
    assert_eq!(h2[1], HistoryRow { row: gone, valid_from: 7000, valid_to: None });
}

#[test]
fn a_task_moved_to_a_later_create_time_keeps_its_versions_and_one_current() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "running", 1), stored("b", T0 + 10, "running", 1)]);
    let moved = stored("a", T0 + 20, "success", 3);
    let (h2, d) = run(h1, vec![stored("b", T0 + 10, "running", 1), moved.clone()]);
    assert_eq!(d.late_closes.len(), 1, "the old place was met before the new one");
    let a: Vec<_> = h2.iter().filter(|r| r.row.task.task_id == "a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].valid_to, Some(3000));
    assert_eq!(current(&h2, "a"), vec![HistoryRow { row: moved, valid_from: 3000, valid_to: None }]);
}

#[test]
fn a_task_moved_to_an_earlier_create_time_is_closed_in_the_same_pass() {
    let (h1, _) = run(vec![], vec![stored("a", T0 + 30, "running", 1)]);
    let (h2, d) = run(h1, vec![stored("a", T0, "success", 2)]);
    assert!(d.late_closes.is_empty());
    assert_eq!(h2.len(), 2);
    assert_eq!(h2.iter().filter(|r| r.valid_to.is_none()).count(), 1);
    assert_eq!(h2[1].valid_to, Some(2000), "the version at the old place, written after the new one");
}

#[test]
fn the_output_stays_sorted_by_create_time_task_id_and_observation() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "pending", 1), stored("c", T0, "pending", 1)]);
    let (h2, _) =
        run(h1, vec![stored("a", T0, "running", 2), stored("b", T0, "pending", 2), stored("c", T0, "running", 2)]);
    let (h3, _) =
        run(h2, vec![stored("a", T0, "success", 3), stored("b", T0, "pending", 2), stored("c", T0, "running", 2)]);
    let keys: Vec<_> =
        h3.iter().map(|r| (r.row.task.create_time, r.row.task.task_id.to_string(), r.row.observed_seq)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(h3.iter().filter(|r| r.row.task.task_id == "a").count(), 3);
}

#[test]
fn a_current_version_whose_task_left_the_tasks_file_is_counted_and_kept() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "running", 1)]);
    let (h2, d) = run(h1.clone(), vec![]);
    assert_eq!(d.orphans, 1);
    assert_eq!(h2, h1);
}

#[test]
fn a_tasks_row_older_than_the_current_version_leaves_the_version_as_it_is() {
    let (h1, _) = run(vec![], vec![stored("a", T0, "running", 5)]);
    let (h2, d) = run(h1.clone(), vec![stored("a", T0, "pending", 3)]);
    assert_eq!((h2, d.opened), (h1, 0), "no version twice under one observation, nothing rolled back");
}
