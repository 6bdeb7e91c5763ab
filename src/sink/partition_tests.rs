use super::*;
use crate::sink::merge::{key, merge};
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

fn sink() -> (tempfile::TempDir, Arc<Sink>) {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::open(dir.path()).unwrap());
    (dir, sink)
}

/// Streams `obs` into the partition through `leaves` (each leaf gets the rows inside it).
fn stream(sink: &Arc<Sink>, leaves: &[Window], obs: &[TaskRow], seen_at: i64) -> Outcome {
    let mut m = PartitionMerge::open(sink.clone(), "2021-10-01", seen_at.into()).unwrap();
    for leaf in leaves {
        m.add(*leaf, obs.iter().filter(|t| leaf.contains(t.create_time)).cloned().collect()).unwrap();
    }
    m.finish().unwrap()
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
        let expected = merge(stored.clone(), inside.clone(), 20);
        let outcome = stream(&sink, &leaves_of(window, &cuts), &inside, 20);
        prop_assert_eq!((outcome.new, outcome.changed, outcome.written), (expected.new, expected.changed, expected.is_changed()));
        prop_assert_eq!(sink.read_partition("2021-10-01").unwrap(), if expected.is_changed() { expected.rows } else { stored });
    }
}

#[test]
fn a_window_that_changes_nothing_writes_no_file() {
    let (_dir, sink) = sink();
    let day = Window::new(DAY, DAY + 86_400);
    let obs: Vec<TaskRow> = (0..50).map(|i| task(i, DAY + i64::from(i) * 600, "success")).collect();
    assert!(stream(&sink, &[day], &obs, 10).written);
    let file = sink.partition_file("2021-10-01");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let again = stream(&sink, &leaves_of(day, &[3600, 7200]), &obs, 20);
    assert_eq!(again, Outcome { new: 0, changed: 0, written: false });
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
    assert_eq!((outcome.new, outcome.written), (n as usize, true));
    // A later pass changes a few tasks in the middle of the day only.
    let changed: Vec<TaskRow> = obs
        .iter()
        .filter(|t| t.task_id.ends_with("77"))
        .map(|t| TaskRow { status: Some("success".into()), ..t.clone() })
        .collect();
    let outcome = stream(
        &sink,
        &leaves_of(Window::new(DAY + 30_000, DAY + 50_000), &[40_000]),
        &changed.iter().filter(|t| (DAY + 30_000..DAY + 50_000).contains(&t.create_time)).cloned().collect::<Vec<_>>(),
        20,
    );
    assert!(outcome.changed > 0 && outcome.new == 0);
    let rows = sink.read_partition("2021-10-01").unwrap();
    assert_eq!(rows.len(), n as usize);
    assert!(rows.windows(2).all(|w| key(&w[0]) < key(&w[1])), "sorted, no duplicate");
    assert_eq!(rows.iter().filter(|r| r.changed_at == 20).count(), outcome.changed);
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
        })
        .collect();
    sink.replace_partition("2021-10-01", &rows).unwrap();
    let mut m = PartitionMerge::open(sink.clone(), "2021-10-01", 10.into()).unwrap();
    let err = m
        .add(Window::new(DAY, DAY + 10), vec![task(5, DAY + 5, "success")])
        .and_then(|_stale| m.finish().map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("part-0.parquet") && err.contains("not sorted"), "{err}");
    assert_eq!(std::fs::read_dir(sink.staging_dir()).unwrap().count(), 0);
}
