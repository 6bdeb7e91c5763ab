use super::*;
use crate::commit::publish::StagedDay;
use crate::transform::merge::{key, merge_listing};
use proptest::prelude::*;

const DAY: i64 = 1_633_046_400; // 2021-10-01

fn task(id: u32, create: i64, status: &str) -> TaskRow {
    TaskRow {
        status: Some(status.into()),
        finish_time: None,
        src_bitrate: Some(1000.5),
        ..TaskRow::example(&format!("t{id:06}"), create)
    }
}

fn sink() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Store::open(dir.path()).unwrap());
    (dir, sink)
}

/// Streams `obs` into the partition through `leaves` (each leaf gets the rows inside it).
fn stream(sink: &Arc<Store>, leaves: &[Window], obs: &[TaskRow], seen_at: i64) -> Outcome {
    let mut m = Opening::local(sink.clone(), "2021-10-01", seen_at.into()).unwrap();
    for leaf in leaves {
        m.add(*leaf, obs.iter().filter(|t| leaf.contains(t.create_time)).cloned().collect()).unwrap();
    }
    published(sink, m.end(true).finish(None).unwrap())
}

/// The staged files published, as the commit does after the stage step.
fn published(sink: &Arc<Store>, (outcome, day): (Outcome, StagedDay)) -> Outcome {
    crate::commit::publish::publish_local(sink, day).unwrap();
    outcome
}

fn leaves_of(window: Window, cuts: &[i64]) -> Vec<Window> {
    let mut bounds: Vec<i64> = cuts.iter().map(|c| window.start + c.rem_euclid(window.width())).collect();
    bounds.extend([window.start, window.end]);
    bounds.sort_unstable();
    bounds.dedup();
    bounds.windows(2).map(|b| Window::new(b[0], b[1])).collect()
}

fn arb_day() -> impl Strategy<Value = Vec<TaskRow>> {
    proptest::collection::vec((0u32..300, 0i64..86_400, prop_oneof!["running", "success"]), 0..120)
        .prop_map(|v| v.into_iter().map(|(id, _, s)| task(id, DAY + i64::from(id) * 288, &s)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Whatever the window and its leaves, the partition ends up exactly as the in-memory
    /// merge of everything would leave it, and the counts agree.
    #[test]
    fn streaming_leaves_equals_merging_in_memory(before in arb_day(), obs in arb_day(), from in 0i64..86_400, width in 1i64..86_400, cuts in proptest::collection::vec(any::<i64>(), 0..5)) {
        let (_dir, sink) = sink();
        stream(&sink, &[Window::new(DAY, DAY + 86_400)], &before, 10);
        let stored = sink.read_partition("2021-10-01").unwrap();
        let window = Window::new(DAY + from, (DAY + from + width).min(DAY + 86_400));
        let inside: Vec<TaskRow> = obs.into_iter().filter(|t| window.contains(t.create_time)).collect();
        let (expected, deleted) = merge_listing(stored.clone(), inside.clone(), window, 20);
        let outcome = stream(&sink, &leaves_of(window, &cuts), &inside, 20);
        let changed = expected.is_changed() || deleted > 0;
        prop_assert_eq!(((outcome.counts.new as usize), (outcome.counts.changed as usize), (outcome.counts.deleted as usize), (outcome.counts.files_written == 1)), (expected.new, expected.changed, deleted, changed));
        prop_assert_eq!(sink.read_partition("2021-10-01").unwrap(), if changed { expected.rows } else { stored });
    }
}

#[test]
fn a_window_that_changes_nothing_writes_no_file() {
    let (_dir, sink) = sink();
    let day = Window::new(DAY, DAY + 86_400);
    let obs: Vec<TaskRow> = (0..50).map(|i| task(i, DAY + i64::from(i) * 600, "success")).collect();
    assert!((stream(&sink, &[day], &obs, 10).counts.files_written == 1));
    let file = sink.partition_file("2021-10-01");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let again = stream(&sink, &leaves_of(day, &[3600, 7200]), &obs, 20);
    assert_eq!(again, Outcome::default());
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), before);
    assert_eq!(std::fs::read_dir(sink.staging_dir()).unwrap().count(), 0);
}

#[test]
fn a_day_larger_than_a_write_batch_streams_through_in_order() {
    let (_dir, sink) = sink();
    let n = (BATCH_ROWS * 2 + 500) as u32;
    let obs: Vec<TaskRow> =
        (0..n).rev().map(|i| task(i, DAY + i64::from(i) * 86_400 / i64::from(n), "running")).collect();
    let day = Window::new(DAY, DAY + 86_400);
    let outcome = stream(&sink, &leaves_of(day, &[20_000, 40_000, 60_000]), &obs, 10);
    assert_eq!(((outcome.counts.new as usize), (outcome.counts.files_written == 1)), (n as usize, true));
    // A later pass changes a few tasks in the middle of the day only.
    // The later pass lists the range completely; a few of its tasks changed.
    let changed: Vec<TaskRow> = obs
        .iter()
        .map(|t| {
            if t.task_id.ends_with("77") { TaskRow { status: Some("success".into()), ..t.clone() } } else { t.clone() }
        })
        .collect();
    let outcome = stream(
        &sink,
        &leaves_of(Window::new(DAY + 30_000, DAY + 50_000), &[40_000]),
        &changed.iter().filter(|t| (DAY + 30_000..DAY + 50_000).contains(&t.create_time)).cloned().collect::<Vec<_>>(),
        20,
    );
    assert!(
        (outcome.counts.changed as usize) > 0
            && (outcome.counts.new as usize) == 0
            && (outcome.counts.deleted as usize) == 0
    );
    let rows = sink.read_partition("2021-10-01").unwrap();
    assert_eq!(rows.len(), n as usize);
    assert!(rows.windows(2).all(|w| key(&w[0]) < key(&w[1])), "sorted, no duplicate");
    assert_eq!(rows.iter().filter(|r| r.changed_at == 20).count(), (outcome.counts.changed as usize));
}

#[test]
fn an_unsorted_stored_file_is_an_error_naming_it_and_leaves_no_staging_file() {
    let (_dir, sink) = sink();
    let rows: Vec<StoredRow> = [2, 1]
        .iter()
        .map(|i| StoredRow {
            task: task(*i, DAY + i64::from(*i), "running"),
            first_seen_at: 1,
            changed_at: 1,
            observed_seq: 1,
            deleted_at: None,
        })
        .collect();
    sink.replace_partition("2021-10-01", &rows).unwrap();
    let mut m = Opening::local(sink.clone(), "2021-10-01", 10.into()).unwrap();
    let err = m
        .add(Window::new(DAY, DAY + 10), vec![task(5, DAY + 5, "success")])
        .and_then(|_stale| m.end(true).finish(None).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("part-0.parquet") && err.contains("not sorted"), "{err}");
    assert_eq!(std::fs::read_dir(sink.staging_dir()).unwrap().count(), 0);
}

#[test]
fn a_task_missing_from_a_complete_listing_is_marked_deleted_and_cleared_when_listed_again() {
    let (_dir, sink) = sink();
    let day = Window::new(DAY, DAY + 86_400);
    let obs: Vec<TaskRow> = (0..20).map(|i| task(i, DAY + i64::from(i) * 600, "success")).collect();
    stream(&sink, &[day], &obs, 10);
    let without: Vec<TaskRow> = obs.iter().filter(|t| t.task_id != "t000007").cloned().collect();
    let outcome = stream(&sink, &leaves_of(day, &[3000, 9000]), &without, 20);
    assert_eq!(
        (
            (outcome.counts.deleted as usize),
            (outcome.counts.moved as usize),
            (outcome.counts.new as usize),
            (outcome.counts.files_written == 1)
        ),
        (1, 0, 0, true)
    );
    let rows = sink.read_partition("2021-10-01").unwrap();
    assert_eq!(rows.len(), 20, "the row stays, so what ran is still reported");
    let gone = rows.iter().find(|r| r.task.task_id == "t000007").unwrap();
    assert_eq!((gone.deleted_at, gone.changed_at), (Some(20), 20));
    assert_eq!(outcome.day.as_ref().map(|c| (c.live_between(0, 86_400), c.deleted)), Some((19, 1)));
    assert_eq!(stream(&sink, &[day], &without, 30), Outcome::default(), "a deletion is recorded once");
    let again = stream(&sink, &[day], &obs, 40);
    assert_eq!((again.counts.changed, again.counts.deleted), (1, 0));
    let back = sink.read_partition("2021-10-01").unwrap();
    assert!(back.iter().all(|r| r.deleted_at.is_none()), "a task listed again is no longer deleted");
}

#[test]
fn a_task_listed_under_a_corrected_create_time_keeps_one_row_whichever_leaf_comes_first() {
    for (from, to) in [(600, 80_000), (80_000, 600)] {
        let (_dir, sink) = sink();
        let day = Window::new(DAY, DAY + 86_400);
        let mut obs: Vec<TaskRow> = (0..20).map(|i| task(i, DAY + 1_000 + i64::from(i) * 3_000, "success")).collect();
        obs.push(task(99, DAY + from, "success"));
        stream(&sink, &[day], &obs, 10);
        obs.retain(|t| t.task_id != "t000099");
        obs.push(task(99, DAY + to, "success"));
        let outcome = stream(&sink, &leaves_of(day, &[40_000]), &obs, 20);
        assert_eq!(
            ((outcome.counts.moved as usize), (outcome.counts.deleted as usize), (outcome.counts.new as usize)),
            (1, 0, 0),
            "moved from {from} to {to}"
        );
        let rows = sink.read_partition("2021-10-01").unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.task.task_id.as_str()).filter(|id| *id == "t000099").collect();
        assert_eq!(ids.len(), 1, "one row per task_id");
        assert!(rows.iter().any(|r| r.task.task_id == "t000099" && r.task.create_time == DAY + to));
        assert!(rows.windows(2).all(|w| key(&w[0]) < key(&w[1])), "still sorted");
    }
}

#[test]
fn a_listing_that_lost_most_of_a_day_marks_nothing_deleted() {
    let (_dir, sink) = sink();
    let day = Window::new(DAY, DAY + 86_400);
    let obs: Vec<TaskRow> = (0..40).map(|i| task(i, DAY + i64::from(i) * 600, "success")).collect();
    stream(&sink, &[day], &obs, 10);
    // The API answers the day with two tasks: 38 of 40 missing is a fault, not deletions.
    let outcome = stream(&sink, &[day], &obs[..2], 20);
    assert_eq!(((outcome.counts.deleted as usize), (outcome.counts.files_written == 1)), (0, false));
    assert!(sink.read_partition("2021-10-01").unwrap().iter().all(|r| r.deleted_at.is_none()));
    // A handful missing is believed.
    let outcome = stream(&sink, &[day], &obs[5..], 30);
    assert_eq!((outcome.counts.deleted as usize), 5);
}

/// [`stream`] with the day's history kept, as a window's commit does it locally.
fn stream_with_history(sink: &Arc<Store>, obs: &[TaskRow], seen_at: i64) -> Outcome {
    let base = || crate::sink::store::local_history_base(sink, "2021-10-01");
    let mut opening = Opening::open(sink.clone(), "2021-10-01", sink.local_base("2021-10-01")).unwrap();
    if !opening.has_stored_file() {
        opening = opening.with_history_alongside(base().unwrap()).unwrap();
    }
    let mut m = opening.observe_as(seen_at.into());
    m.add(Window::new(DAY, DAY + 86_400), obs.to_vec()).unwrap();
    let ended = m.end(true);
    let history = if ended.writes_history_alongside() { None } else { base() };
    published(sink, ended.finish(history).unwrap())
}

fn history_sink() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Store::open(dir.path()).unwrap().with_history(true).unwrap());
    (dir, sink)
}

fn history(sink: &Store) -> Vec<crate::transform::versions::HistoryRow> {
    crate::sink::format::history_file::read_history(&sink.history_file("2021-10-01").unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Whatever passes see, each task's versions are the distinct observations its row in
    /// `tasks` had, back to back, the last one equal to that row.
    #[test]
    fn the_history_holds_every_row_tasks_had_back_to_back(passes in proptest::collection::vec(arb_day(), 1..5)) {
        let (_dir, sink) = history_sink();
        let mut seen: std::collections::HashMap<String, Vec<StoredRow>> = Default::default();
        for (i, obs) in passes.iter().enumerate() {
            stream_with_history(&sink, obs, 10 * (i as i64 + 1));
            for row in sink.read_partition("2021-10-01").unwrap() {
                let versions = seen.entry(row.task.task_id.to_string()).or_default();
                if versions.last() != Some(&row) {
                    versions.push(row);
                }
            }
        }
        let h = history(&sink);
        for (id, rows) in &seen {
            let mine: Vec<_> = h.iter().filter(|v| v.row.task.task_id == id.as_str()).collect();
            prop_assert_eq!(mine.iter().map(|v| v.row.clone()).collect::<Vec<_>>(), rows.clone());
            prop_assert!(mine.windows(2).all(|w| w[0].valid_to == Some(w[1].valid_from)), "back to back: {mine:?}");
            prop_assert_eq!(mine.last().unwrap().valid_to, None);
        }
        prop_assert_eq!(h.len(), seen.values().map(Vec::len).sum::<usize>());
    }
}

#[test]
fn a_quiet_window_writes_no_history_and_a_lagging_history_is_caught_up() {
    let (_dir, sink) = history_sink();
    let day = vec![task(1, DAY, "running"), task(2, DAY + 60, "running")];
    let first = stream_with_history(&sink, &day, 10);
    assert_eq!(first.counts.versions, 2);
    let path = sink.history_file("2021-10-01").unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let quiet = stream_with_history(&sink, &day, 20);
    assert_eq!(((quiet.counts.files_written == 1), quiet.counts.versions), (false, 0));
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), before, "not rewritten");
    // A tasks file the history has not followed (a crash between the two renames).
    let mut rows = sink.read_partition("2021-10-01").unwrap();
    rows[0].task.status = Some("success".into());
    (rows[0].observed_seq, rows[0].changed_at) = (30, 30);
    sink.replace_partition("2021-10-01", &rows).unwrap();
    let caught_up = stream_with_history(&sink, &[task(1, DAY, "success"), task(2, DAY + 60, "running")], 40);
    assert_eq!(((caught_up.counts.files_written == 1), caught_up.counts.versions), (false, 1));
    let h = history(&sink);
    assert_eq!(h.len(), 3);
    assert_eq!((h[0].valid_to, h[1].valid_from, h[1].row.observed_seq), (Some(30), 30, 30));
}

#[test]
fn a_history_newer_than_the_tasks_file_is_left_as_it_is_and_tasks_go_on() {
    let (_dir, sink) = history_sink();
    stream_with_history(&sink, &[task(1, DAY, "running")], 10);
    let restored = sink.read_partition("2021-10-01").unwrap();
    stream_with_history(&sink, &[task(1, DAY, "success")], 20);
    let h = history(&sink);
    // tasks/ restored from a backup, task_history/ not.
    sink.replace_partition("2021-10-01", &restored).unwrap();
    let quiet = stream_with_history(&sink, &[task(1, DAY, "running")], 30);
    assert_eq!(((quiet.counts.files_written == 1), quiet.counts.versions), (false, 0));
    assert_eq!(history(&sink), h, "not rolled back");
}

#[test]
fn an_unreadable_history_file_does_not_stop_the_days_tasks() {
    let (_dir, sink) = history_sink();
    stream_with_history(&sink, &[task(1, DAY, "running")], 10);
    let path = sink.history_file("2021-10-01").unwrap();
    std::fs::write(&path, b"not parquet").unwrap();
    let next = stream_with_history(&sink, &[task(1, DAY, "success")], 20);
    assert!((next.counts.files_written == 1));
    assert_eq!(sink.read_partition("2021-10-01").unwrap()[0].task.status.as_deref(), Some("success"));
    assert_eq!(std::fs::read(&path).unwrap(), b"not parquet", "kept for the operator, named in the log");
}
