//! Backfills against the simulator on 127.0.0.1:0: exact results under faults, unstable
//! paging, deep windows, clamped pages; resumption; refusals.

use std::sync::atomic::Ordering;

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::{FaultSpec, SimOptions};
use tasksync::sync::run_backfill;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_backfill_of_100k_tasks_over_30_days_is_exact_and_a_rerun_changes_nothing() {
    let mut spec = spec(11, 100_000, 30);
    spec.hot_hour = Some((D0 + 12 * DAY + 14 * 3600, 15_000));
    let options = SimOptions {
        keys: Some((AK.into(), SK.into())),
        faults: FaultSpec::quick(150),
        unstable_order: true,
        ..SimOptions::default()
    };
    let now = D0 + 30 * DAY + 3600;
    let world = Scenario::start(spec, options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + 30 * DAY);

    let first = world.backfill(now, range).await.expect("the backfill succeeds");
    let truth = sim.sim.truth(range.start, range.end, false);
    assert_eq!(truth.len(), 115_000);
    assert_exact(&dir.path().join("out"), &truth);
    assert_eq!(first.counts.tasks, 115_000);
    assert_eq!(first.windows, 30, "one window per day");
    assert!(first.counts.leaves > 30, "the spike day was split ({} leaves)", first.counts.leaves);
    assert_eq!(sim.sim.stats.deep_refused.load(Ordering::SeqCst), 0, "deep windows are split before paging");
    assert!(sim.sim.stats.faults.load(Ordering::SeqCst) > 50, "faults were injected");
    assert!(first.retries > 0);
    assert_eq!(first.counts.files_written, 30);

    // The same backfill again: already done, nothing is requested or written.
    let stamps = file_stamps(&dir.path().join("out"));
    let requests = sim.sim.stats.requests.load(Ordering::SeqCst);
    let again = world.backfill(now, range).await.unwrap();
    assert_eq!((again.windows, again.counts.files_written), (0, 0));
    assert_eq!(sim.sim.stats.requests.load(Ordering::SeqCst), requests);
    assert_eq!(file_stamps(&dir.path().join("out")), stamps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_backfill_over_unchanged_data_rewrites_no_file() {
    let now = D0 + 3 * DAY;
    let world = Scenario::start(spec(5, 3_000, 2), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let plain = |d: &std::path::Path| config(&sim.url, d, SK, "");
    run_backfill(plain(dir.path()), fixed(now), Window::new(D0, D0 + 2 * DAY)).await.unwrap();
    let stamps = file_stamps(&dir.path().join("out"));
    // A different range is a different job: it re-reads both days and finds nothing new.
    let totals = run_backfill(plain(dir.path()), fixed(now + 60), Window::new(D0 - DAY, D0 + 2 * DAY)).await.unwrap();
    assert_eq!(totals.counts.tasks, 3_000);
    assert_eq!((totals.counts.new, totals.counts.changed, totals.counts.files_written), (0, 0, 0));
    assert_eq!(file_stamps(&dir.path().join("out")), stamps);
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0 - DAY, D0 + 2 * DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_progressed_are_updated_and_keep_their_first_seen_time() {
    let now = D0 + DAY + 600;
    let world = Scenario::start(spec(8, 2_000, 1), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    world.backfill(now, Window::new(D0, D0 + DAY)).await.unwrap();
    let before = stored(&out);
    let unfinished = before.iter().filter(|(_, r)| !r.task.is_final()).count();
    assert!(unfinished > 10, "some tasks are still running at the end of the day ({unfinished})");

    sim.sim.set_now(now + 6 * 3600);
    let totals = world.backfill(now + 6 * 3600, Window::new(D0, D0 + DAY + 1)).await.unwrap();
    assert_exact(&out, &sim.sim.truth(D0, D0 + DAY, false));
    let after = stored(&out);
    let differs = after
        .iter()
        .filter(|(_, r)| before.iter().any(|(_, b)| b.task.task_id == r.task.task_id && b.task != r.task))
        .count();
    assert!(differs > 0, "six hours later some of the {unfinished} unfinished tasks have moved on");
    assert_eq!(totals.counts.changed as usize, differs, "changed counts exactly the rows whose content differs");
    assert_eq!(totals.counts.new, 0);
    let first_seen: std::collections::HashMap<_, _> =
        before.iter().map(|(_, r)| (r.task.task_id.clone(), r.first_seen_at)).collect();
    for (_, r) in after {
        assert_eq!(first_seen[&r.task.task_id], r.first_seen_at, "first_seen_at is kept");
        let moved = r.changed_at > r.first_seen_at;
        assert_eq!(moved, before.iter().any(|(_, b)| b.task.task_id == r.task.task_id && b.task != r.task));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_larger_than_a_leaf_is_streamed_leaf_by_leaf_and_a_window_inside_it_rewrites_only_its_rows() {
    let noon = D0 + 12 * 3600 + 1800;
    let world = Scenario::start(spec(12, 12_000, 1), SimOptions::default(), noon).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let (out, cfg) = (dir.path().join("out"), || world.config(""));
    // At 12:30 the morning is stored; later the evening is added; then 12:00-13:00 is read
    // again: its tasks moved on or are new, while the stored rows before and after it must
    // be carried over into the new file untouched.
    let totals = run_backfill(cfg(), fixed(noon), Window::new(D0, D0 + DAY)).await.unwrap();
    assert!(
        totals.counts.leaves >= totals.counts.tasks.div_ceil(tasksync::source::paging::LEAF_TASKS)
            && totals.counts.leaves > 1,
        "{} tasks in {} leaves",
        totals.counts.tasks,
        totals.counts.leaves
    );
    let later = D0 + DAY + 600;
    sim.sim.set_now(later);
    run_backfill(cfg(), fixed(later), Window::new(D0 + 13 * 3600, D0 + DAY)).await.unwrap();
    let before = stored(&out);
    let middle = Window::new(D0 + 12 * 3600, D0 + 13 * 3600);
    let totals = run_backfill(cfg(), fixed(later + 60), middle).await.unwrap();
    let after = stored(&out);
    assert!(totals.counts.new > 0 && totals.counts.changed > 0 && totals.counts.files_written == 1, "{totals}");
    assert!(
        after
            .windows(2)
            .all(|w| (w[0].1.task.create_time, &w[0].1.task.task_id) < (w[1].1.task.create_time, &w[1].1.task.task_id)),
        "one sorted file, no duplicate"
    );
    let outside = |rows: &[(String, tasksync::row::StoredRow)]| {
        rows.iter().filter(|(_, r)| !middle.contains(r.task.create_time)).cloned().collect::<Vec<_>>()
    };
    assert_eq!(outside(&after), outside(&before), "rows outside the window are carried over as they were");
    let inside: Vec<_> =
        after.iter().filter(|(_, r)| middle.contains(r.task.create_time)).map(|(_, r)| r.task.clone()).collect();
    let mut truth = sim.sim.truth(middle.start, middle.end, false);
    truth.sort_by(|a, b| (a.create_time, &a.task_id).cmp(&(b.create_time, &b.task_id)));
    assert_eq!(inside.len(), truth.len());
    let stale = inside.iter().zip(&truth).filter(|(a, b)| a != b).count();
    assert_eq!(stale, 0, "the window's rows hold their latest state ({stale} of {} differ)", truth.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_where_it_stopped_and_ends_exact() {
    let now = D0 + 20 * DAY;
    let options = SimOptions {
        faults: FaultSpec { per_mille: 0, retry_after_s: 0, slow: std::time::Duration::from_millis(5) },
        ..SimOptions::default()
    };
    let world = Scenario::start(spec(21, 40_000, 20), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + 20 * DAY);
    let cfg = world.config("concurrency = 2");
    let run = tokio::spawn(run_backfill(cfg, fixed(now), range));
    // Stop it once some partitions exist, as Ctrl-C or a crash would.
    let tasks_dir = dir.path().join("out/tasks");
    for _ in 0..2000 {
        if std::fs::read_dir(&tasks_dir).map(|d| d.count()).unwrap_or(0) >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    let partial = stored(&dir.path().join("out")).len();
    assert!(partial > 0 && partial < 40_000, "interrupted midway ({partial} rows)");

    let resumed = world.backfill(now, range).await.expect("the resumed run succeeds");
    assert!(resumed.windows < 20, "finished windows are skipped ({} redone)", resumed.windows);
    assert_exact(&dir.path().join("out"), &sim.sim.truth(range.start, range.end, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_refuses_deep_offsets_makes_the_window_split() {
    let now = D0 + DAY;
    let options = SimOptions { max_offset: 1_000, ..SimOptions::default() };
    let world = Scenario::start(spec(3, 5_000, 1), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    // The client believes the server pages deeper than it does.
    let totals =
        run_backfill(world.config("max_offset = 100000"), fixed(now), Window::new(D0, D0 + DAY)).await.unwrap();
    assert!(sim.sim.stats.deep_refused.load(Ordering::SeqCst) > 0);
    assert!(totals.counts.leaves >= 5, "split into windows of at most 1000 ({} leaves)", totals.counts.leaves);
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamped_page_size_is_followed_by_what_was_received() {
    let now = D0 + DAY;
    let options = SimOptions { max_count: 37, ..SimOptions::default() };
    // Fewer tasks than a leaf holds (paging::LEAF_TASKS), so the day is paged unsplit.
    let world = Scenario::start(spec(4, 2_000, 1), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let totals = run_backfill(world.config("page_size = 500"), fixed(now), Window::new(D0, D0 + DAY)).await.unwrap();
    assert_eq!(totals.pages, 2_000u64.div_ceil(37));
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_rejects_file_and_the_rest_is_stored() {
    let now = D0 + DAY;
    let mut spec = spec(6, 4_000, 1);
    spec.bad_per_million = 5_000;
    let world = Scenario::start(spec, SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let totals = world.backfill(now, Window::new(D0, D0 + DAY)).await.unwrap();
    let bad = sim.sim.bad_records(D0, D0 + DAY);
    assert!(bad > 5, "the data set has bad records ({bad})");
    assert_eq!(totals.counts.rejects as usize, bad);
    let rejects_dir = dir.path().join("out/_rejects");
    let lines: Vec<serde_json::Value> = std::fs::read_dir(&rejects_dir)
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), bad);
    assert!(lines.iter().all(|l| l["reason"] == "no task_id"
        && (l["record"]["create_time"].is_string() || l["record"]["create_time"].is_number())));
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_run_with_one_clear_sentence_and_no_checkpoint() {
    let now = D0 + DAY;
    let sim =
        start_sim(spec(2, 500, 1), SimOptions { keys: Some((AK.into(), SK.into())), ..SimOptions::default() }, now)
            .await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "WrongSecretKey0123456789abcdefXY";
    let err = run_backfill(config(&sim.url, dir.path(), wrong, ""), fixed(now), Window::new(D0, D0 + DAY))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused the credentials") && err.contains("2021-10-01"), "{err}");
    assert!(!err.contains(wrong) && !err.contains(SK), "the message leaks no secret: {err}");
    assert!(!err.contains('\n'));
    assert_eq!(sim.sim.stats.auth_refused.load(Ordering::SeqCst), 1, "auth failures are not retried");
    let state = tasksync::state::State::open(&dir.path().join("state/state.db")).unwrap();
    assert!(state.done_intervals(&tasksync::sync::backfill_job_id(Window::new(D0, D0 + DAY))).unwrap().is_empty());
    assert!(stored(&dir.path().join("out")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_keeps_failing_ends_the_run_naming_the_window_and_moves_no_checkpoint() {
    let now = D0 + 2 * DAY;
    let sim =
        start_sim(spec(2, 500, 2), SimOptions { faults: FaultSpec::quick(1000), ..SimOptions::default() }, now).await;
    let dir = tempfile::tempdir().unwrap();
    let err =
        run_backfill(config(&sim.url, dir.path(), SK, "max_retries = 2"), fixed(now), Window::new(D0, D0 + 2 * DAY))
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("gave up on window [2021-10-0") && err.contains("after 3 tries"), "{err}");
    let state = tasksync::state::State::open(&dir.path().join("state/state.db")).unwrap();
    assert!(state.done_intervals(&tasksync::sync::backfill_job_id(Window::new(D0, D0 + 2 * DAY))).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_while_the_simulators_clock_runs_ends_with_every_task_once_in_a_state_it_really_had() {
    let start_now = D0 + 3 * DAY;
    let options = SimOptions { faults: FaultSpec::quick(150), unstable_order: true, ..SimOptions::default() };
    // Tasks keep being created after start_now, inside the range but past where it stops.
    let sim = start_sim(spec(12, 40_000, 4), options, start_now).await;
    let range = Window::new(D0, start_now + DAY);
    let ticking = sim.sim.clone();
    let clock = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            ticking.set_now(ticking.now() + 5);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let totals = run_backfill(config(&sim.url, dir.path(), SK, ""), fixed(start_now), range).await.unwrap();
    clock.abort();
    let end_now = sim.sim.now();
    assert!(end_now > start_now + 60, "the clock ran during the backfill");
    assert!(totals.counts.repaged > 0 || totals.retries > 0);

    // The range reaches a day past "now": the backfill stops at now (a window reaching
    // the future keeps growing), and every task created before it is there once, in a
    // state it really had.
    let rows = stored(&dir.path().join("out"));
    let by_id: std::collections::HashMap<_, _> = rows.iter().map(|(_, r)| (r.task.task_id.clone(), &r.task)).collect();
    assert_eq!(by_id.len(), rows.len(), "no duplicates");
    assert!(rows.iter().all(|(_, r)| r.task.create_time < start_now), "nothing after now was stored");
    let state = tasksync::state::State::open(&state_db(dir.path())).unwrap();
    assert_eq!(job_finished_at(&state, range), None, "the rest of the range is left for a later run");
    sim.sim.set_now(start_now);
    let at_start = sim.sim.truth(range.start, start_now, false);
    sim.sim.set_now(end_now);
    let at_end = sim.sim.truth(range.start, range.end, false);
    assert!(at_end.len() > at_start.len(), "tasks appeared during the run");
    for t in &at_start {
        assert!(by_id.contains_key(&t.task_id), "task {} existed at the start and is missing", t.task_id);
    }
    let end: std::collections::HashMap<_, _> = at_end.iter().map(|t| (t.task_id.clone(), t)).collect();
    let rank = |s: Option<&str>| {
        ["pending", "downloading", "running", "uploading", "success", "fail"]
            .iter()
            .position(|x| Some(*x) == s)
            .unwrap()
            .min(4)
    };
    for (id, row) in &by_id {
        let last = end.get(id).unwrap_or_else(|| panic!("task {id} is not in the simulator's data"));
        assert_eq!(row.create_time, last.create_time);
        assert!(
            rank(row.status.as_deref()) <= rank(last.status.as_deref()),
            "task {id}: stored {:?} is ahead of the truth {:?}",
            row.status,
            last.status
        );
        if row.status == last.status {
            assert_eq!(*row, *last, "task {id}: same status, same fields");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_server_has_its_next_ranges_paged_ahead_and_the_data_stays_exact() {
    // 30 ms away (more than api::client::FAR_SERVER), so each leaf's successor is paged
    // while it is handed over; with unstable order and transient faults on top.
    let faults = FaultSpec::quick(50);
    let options = SimOptions { latency_ms: 30, unstable_order: true, faults, ..SimOptions::default() };
    let now = D0 + 2 * DAY + 3600;
    let world = Scenario::start(spec(46, 16_000, 2), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = world.config("concurrency = 8");
    let totals = run_backfill(cfg, fixed(now), Window::new(D0, D0 + 2 * DAY)).await.expect("the backfill");
    assert!(totals.counts.leaves >= 4 && totals.retries > 0, "{totals}");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + 2 * DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_windows_of_a_far_server_run_more_at_once_and_the_data_stays_exact() {
    // A few hundred tasks a day, 30 ms away: each window is one leaf, so more windows
    // than two run at once (sync/window.rs), with faults and unstable order on top.
    let options =
        SimOptions { latency_ms: 30, unstable_order: true, faults: FaultSpec::quick(50), ..SimOptions::default() };
    let now = D0 + 12 * DAY + 3600;
    let world = Scenario::start(spec(47, 4_000, 12), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = world.config("concurrency = 8");
    let totals = run_backfill(cfg, fixed(now), Window::new(D0, D0 + 12 * DAY)).await.expect("the backfill");
    assert_eq!((totals.windows, totals.counts.leaves), (12, 12), "{totals}");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + 12 * DAY, false));
}
