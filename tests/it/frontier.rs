//! Nothing freezes the cursor forever: a part that cannot settle is left behind alone, the
//! rest commits, and after `sync.give_up_after` the frontier moves on, loudly. A clock
//! stepped forward and back between passes loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::{SimOptions, Trouble};
use tasksync::state::{INCREMENTAL, State};
use tasksync::sync::{Context, PassKind, run_backfill, run_incremental, run_pass};

fn trouble(t: Trouble) -> SimOptions {
    SimOptions { trouble: t, ..SimOptions::default() }
}

/// What the backfill of day one left behind, and whether every other task of it is stored.
async fn backfill_day(sim: &Sim, extra_api: &str) -> (tasksync::sync::summary::Totals, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sim.url, dir.path(), SK, extra_api);
    let totals = run_backfill(cfg, fixed(D0 + 2 * DAY), Window::new(D0, D0 + DAY)).await.unwrap();
    (totals, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_denser_than_offset_paging_reaches_is_left_behind_alone() {
    let dense = D0 + 40_000;
    let options =
        SimOptions { max_offset: 200, ..trouble(Trouble { dense_second: Some((dense, 250)), ..Trouble::default() }) };
    let sim = start_sim(spec(71, 5_000, 1), options, D0 + 2 * DAY).await;
    let (totals, dir) = backfill_day(&sim, "max_offset = 200").await;
    assert_eq!(totals.left_behind.len(), 1, "{totals}");
    // The API's end_time is inclusive, so the second before is asked about it too: both
    // wait, and nothing else of the day.
    assert!(
        totals.left_behind[0].to_string().starts_with("[2021-10-01T11:06:39Z, 2021-10-01T11:06:41Z)"),
        "{:?}",
        totals.left_behind
    );
    assert!(totals.left_behind[0].to_string().contains("within one second"), "{:?}", totals.left_behind);
    let mut truth = sim.sim.truth(D0, dense - 1, false);
    truth.extend(sim.sim.truth(dense + 1, D0 + DAY, false));
    assert_exact(&dir.path().join("out"), &truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_the_api_never_serves_is_narrowed_to_its_second() {
    let phantom = D0 + 50_000;
    let sim = start_sim(
        spec(72, 5_000, 1),
        trouble(Trouble { phantom_second: Some(phantom), ..Trouble::default() }),
        D0 + 2 * DAY,
    )
    .await;
    let (totals, dir) = backfill_day(&sim, "repage_attempts = 1").await;
    assert_eq!(totals.left_behind.len(), 1, "{totals}");
    assert!(
        totals.left_behind[0].to_string().starts_with("[2021-10-01T13:53:19Z, 2021-10-01T13:53:21Z)"),
        "{:?}",
        totals.left_behind
    );
    let mut truth = sim.sim.truth(D0, phantom - 1, false);
    truth.extend(sim.sim.truth(phantom + 1, D0 + DAY, false));
    assert_exact(&dir.path().join("out"), &truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_larger_than_max_body_bytes_is_asked_again_with_a_smaller_count() {
    // Two hours of tasks whose records are 4 KB each: a page of 100 is 400 KB.
    let bloated = Some((D0 + 3600, D0 + 3 * 3600, 4_000));
    let sim = start_sim(spec(73, 5_000, 1), trouble(Trouble { bloated, ..Trouble::default() }), D0 + 2 * DAY).await;
    let (totals, dir) = backfill_day(&sim, "max_body_bytes = 100000").await;
    assert!(totals.left_behind.is_empty(), "{totals}");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_left_behind_longer_than_give_up_after_lets_the_cursor_move_on() {
    let phantom = D0 + DAY + 3_000;
    let sim = start_sim(
        spec(74, 6_000, 3),
        trouble(Trouble { phantom_second: Some(phantom), ..Trouble::default() }),
        D0 + DAY + 7200,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = with_sync(config(&sim.url, dir.path(), SK, "repage_attempts = 1"));
        c.sync.give_up_after = std::time::Duration::from_secs(DAY as u64);
        c
    };
    let cursor = || State::open(&state_db(dir.path())).unwrap().cursor(INCREMENTAL).unwrap().unwrap();
    let mut now = D0 + DAY + 7200;
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    assert!(cursor() <= phantom, "the cursor waits before the range left behind");
    // Passes within give_up_after keep waiting and keep re-walking from the range.
    for _ in 0..2 {
        now += 8 * 3600;
        sim.sim.set_now(now);
        let totals = run_incremental(cfg(), fixed(now), D0).await.unwrap();
        assert!(!totals.left_behind.is_empty(), "{totals}");
        assert!(cursor() <= phantom);
    }
    now += 10 * 3600;
    sim.sim.set_now(now);
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    assert_eq!(cursor(), now - 120, "after give_up_after the frontier moves on");
    let state = State::open(&state_db(dir.path())).unwrap();
    assert_eq!(state.ranges_given_up().unwrap(), 1);
    let report = tasksync::status::report(&cfg(), now).unwrap().unwrap();
    assert!(report.to_string().contains("GIVEN UP"), "{report}");
    // The next pass re-walks only its lookback, not the day behind the given-up second.
    now += 3600;
    sim.sim.set_now(now);
    let quiet = run_incremental(cfg(), fixed(now), D0).await.unwrap();
    assert!(quiet.requests < 40, "{quiet}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_a_day_forward_and_back_between_passes_loses_nothing() {
    let t = D0 + DAY + 3600;
    let world = Scenario::start(spec(75, 6_000, 2), SimOptions::default(), t).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let clock = Arc::new(AtomicI64::new(t));
    let c = clock.clone();
    let ctx = Context::open(with_sync(world.config("")), Arc::new(move || c.load(Ordering::SeqCst))).unwrap();
    let pass = || run_pass(&ctx, PassKind::Incremental { start: D0 }, Arc::new(AtomicBool::new(false)));
    pass().await.unwrap();
    // Our clock jumps a day ahead; the API's moves on five minutes.
    sim.sim.set_now(t + 300);
    clock.store(t + DAY, Ordering::SeqCst);
    pass().await.unwrap();
    let cursor = State::open(&state_db(dir.path())).unwrap().cursor(INCREMENTAL).unwrap().unwrap();
    assert!(cursor <= t + 300, "the cursor never passes the API's now");
    // Set back; the API's clock moves on again.
    sim.sim.set_now(t + 3600);
    clock.store(t + 3600, Ordering::SeqCst);
    pass().await.unwrap();
    drop(ctx);
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, t + 3600 - 120, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_up_to_now_leaves_the_newest_settle_for_its_rerun() {
    // Tasks are listed up to 90 seconds after their create_time.
    let now = D0 + 3600;
    let world = Scenario::start(spec(77, 2_000, 1), SimOptions { late_s: 90, ..SimOptions::default() }, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + DAY);
    world.backfill(now, range).await.unwrap();
    let job = tasksync::sync::backfill_job_id(range);
    let done = State::open(&state_db(dir.path())).unwrap().done_intervals(&job).unwrap();
    assert_eq!(done, vec![(D0, now - 120)], "the newest sync.settle is not marked done");
    // The rerun that README promises "does the rest" finds the tasks listed late (a
    // backfill does not re-check what it did: only which tasks are there is compared).
    sim.sim.set_now(now + 600);
    world.backfill(now + 600, range).await.unwrap();
    let ids: std::collections::HashSet<_> =
        stored(&dir.path().join("out")).into_iter().map(|(_, r)| r.task.task_id).collect();
    let ids_of = |to: i64| -> std::collections::HashSet<_> {
        sim.sim.truth(D0, to, false).into_iter().map(|t| t.task_id).collect()
    };
    // Everything listed by the rerun's now (a task shows up to 90 s after it is created),
    // and nothing that does not exist.
    assert!(ids.is_superset(&ids_of(now + 600 - 90)), "a task listed late before the rerun is missing");
    assert!(ids.is_subset(&ids_of(now + 600)));
}
