//! Converging to a source that changes its past: late listings, deletions (also while a
//! window is paged), corrected create times, and a state database restored or lost.

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::{PastSpec, SimOptions};
use tasksync::state::State;
use tasksync::sync::summary::Totals;
use tasksync::sync::{run_backfill, run_incremental};

fn past(late: u32, deleted: u32, corrected: u32) -> SimOptions {
    SimOptions {
        past: PastSpec { late_per_100k: late, deleted_per_100k: deleted, corrected_per_100k: corrected, since: 0 },
        ..SimOptions::default()
    }
}

/// Incremental passes every `step` seconds from `from` to `to`, the simulator's clock
/// following (each pass reconciles); returns every pass's totals.
async fn passes(sim: &Sim, dir: &std::path::Path, from: i64, to: i64, step: i64) -> Vec<Totals> {
    let mut all = Vec::new();
    let mut now = from;
    while now <= to {
        sim.sim.set_now(now);
        let mut cfg = with_sync(config(&sim.url, dir, SK, ""));
        cfg.sync.reconcile_every = std::time::Duration::from_secs(step.min(6 * 3600) as u64);
        all.push(run_incremental(cfg, fixed(now), D0).await.unwrap());
        now += step;
    }
    all
}

/// One rotation of reconciliations, a minute apart, ending at `end`: what equal counts
/// hide (a task moved within its day) is found within it.
async fn one_rotation(sim: &Sim, dir: &std::path::Path, end: i64) {
    let n = tasksync::sync::reconcile::ROTATION;
    passes(sim, dir, end - (n - 1) * 60, end, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_listings_behind_the_lookback_are_found_by_the_reconciliation() {
    // 3 % of the tasks appear 1 hour to 3 days late: most of them behind the lookback.
    let world = Scenario::start(spec(61, 12_000, 6), past(3_000, 0, 0), D0 + 6 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let end = D0 + 10 * DAY;
    let all = passes(sim, dir.path(), D0 + 6 * DAY, end, 8 * 3600).await;
    let truth = sim.sim.truth(D0, end - 3600, false);
    assert_eq!(assert_converged(&dir.path().join("out"), &truth), 0);
    let reconciled: Vec<_> = all.iter().filter_map(|t| t.reconciled.clone()).collect();
    assert_eq!(reconciled.len(), all.len() - 1, "every pass but the first reconciled");
    for r in &reconciled {
        assert!(r.requests <= r.budget && r.days >= 6, "{r:?}");
    }
    let found: u64 = reconciled.iter().map(|r| r.new).sum();
    assert!(found > 50, "the reconciliations found the late listings: {found}");
    let state = State::open(&state_db(dir.path())).unwrap();
    assert_eq!(state.last_reconciliation().unwrap().as_ref(), reconciled.last(), "status shows the last one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconciliation_late_listings_behind_the_lookback_are_lost() {
    // The same history with reconciliation off: what the test above proves is not free.
    let world = Scenario::start(spec(61, 12_000, 6), past(3_000, 0, 0), D0 + 6 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let end = D0 + 10 * DAY;
    let mut now = D0 + 6 * DAY;
    while now <= end {
        sim.sim.set_now(now);
        let mut cfg = with_sync(world.config(""));
        cfg.sync.reconcile_window = std::time::Duration::ZERO;
        run_incremental(cfg, fixed(now), D0).await.unwrap();
        now += 8 * 3600;
    }
    let truth = sim.sim.truth(D0, end - 3600, false);
    let stored = stored(&dir.path().join("out")).len();
    assert!(stored < truth.len(), "{stored} stored of {} listed", truth.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_while_a_window_is_paged_lose_no_live_task() {
    // Tasks are deleted while every page request moves the clock on two minutes.
    let sim = start_sim(spec(62, 20_000, 3), past(0, 2_000, 0), D0 + 3 * DAY).await;
    sim.sim.advance_per_request(60);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sim.url, dir.path(), SK, "page_size = 50");
    let totals = run_backfill(cfg, fixed(D0 + 3 * DAY), Window::new(D0, D0 + 3 * DAY)).await.unwrap();
    sim.sim.advance_per_request(0);
    assert!(totals.left_behind.is_empty(), "{totals}");
    // Every task still listed at the end existed throughout the paging: each must be stored.
    let truth = sim.sim.truth(D0, D0 + 3 * DAY, false);
    let ids: std::collections::HashSet<_> =
        stored(&dir.path().join("out")).into_iter().map(|(_, r)| r.task.task_id).collect();
    let lost: Vec<_> = truth.iter().filter(|t| !ids.contains(&t.task_id)).map(|t| t.task_id.clone()).collect();
    assert!(lost.is_empty(), "{} live tasks lost, e.g. {:?}", lost.len(), lost.first());
    assert!(totals.counts.repaged > 0, "deletions moved totals while pages were fetched: {totals}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_deleted_after_it_was_stored_is_marked_deleted_not_removed() {
    let world = Scenario::start(spec(63, 8_000, 4), past(0, 5_000, 0), D0 + 4 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    let range = Window::new(D0, D0 + 3 * DAY);
    world.backfill(D0 + 4 * DAY, range).await.unwrap();
    let before = stored(&out).len();
    let later = D0 + 9 * DAY;
    sim.sim.set_now(later);
    // The same backfill is done already: a new job (one more, empty, day) lists them again.
    let again = Window::new(D0 - DAY, D0 + 3 * DAY);
    let totals = world.backfill(later, again).await.unwrap();
    let deleted = assert_converged(&out, &sim.sim.truth(D0, D0 + 3 * DAY, false));
    assert!(deleted > 0 && totals.counts.deleted as usize == deleted, "{deleted} marked, {totals}");
    assert!(stored(&out).len() >= before, "no row is removed");
    let state = State::open(&state_db(dir.path())).unwrap();
    assert_eq!(state.deleted_tasks().unwrap() as usize, deleted, "status counts them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_and_corrections_over_days_of_passes_converge_to_the_source() {
    let world = Scenario::start(spec(64, 10_000, 5), past(1_000, 2_000, 3_000), D0 + 5 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let end = D0 + 8 * DAY;
    passes(sim, dir.path(), D0 + 5 * DAY, end - 3600, 7 * 3600).await;
    one_rotation(sim, dir.path(), end).await;
    let deleted = assert_converged(&dir.path().join("out"), &sim.sim.truth(D0, end - 3600, false));
    assert!(deleted > 0, "deletions were found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_create_time_leaves_one_row() {
    // 5 % of the tasks are listed under an earlier create_time of their day, later.
    let world = Scenario::start(spec(65, 6_000, 3), past(0, 0, 5_000), D0 + 3 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + 3 * DAY);
    world.backfill(D0 + 3 * DAY, range).await.unwrap();
    let later = D0 + 6 * DAY;
    sim.sim.set_now(later);
    let totals = world.backfill(later, Window::new(D0, D0 + 3 * DAY - 1)).await.unwrap();
    assert!(totals.counts.moved > 0, "{totals}");
    assert_eq!(assert_converged(&dir.path().join("out"), &sim.sim.truth(D0, D0 + 3 * DAY - 1, false)), 0);
}

/// Runs passes at `t1` and `t2`; between them `between` does something to the state
/// database; at `t3` (tasks moved on) a pass must still store the newest state of each.
async fn newer_wins_after(seed: u64, between: impl FnOnce(&std::path::Path, &std::path::Path)) {
    let t1 = D0 + 2 * DAY + 3600;
    let world = Scenario::start(spec(seed, 6_000, 3), SimOptions::default(), t1).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let backup = dir.path().join("backup.db");
    let cfg = || with_sync(world.config(""));
    run_incremental(cfg(), fixed(t1), D0).await.unwrap();
    // An operator's backup, taken the way SQLite's own backup would be.
    State::open(&state_db(dir.path())).unwrap().integrity_check().unwrap();
    std::fs::copy(state_db(dir.path()), &backup).unwrap();
    let t2 = t1 + 2 * 3600;
    sim.sim.set_now(t2);
    run_incremental(cfg(), fixed(t2), D0).await.unwrap();
    between(&state_db(dir.path()), &backup);
    let t3 = t2 + 6 * 3600;
    sim.sim.set_now(t3);
    // A backfill over the whole range, as an operator would run after a restore.
    world.backfill(t3, Window::new(D0, t3 - 120)).await.unwrap();
    assert_converged(&dir.path().join("out"), &sim.sim.truth(D0, t3 - 120, false));
}

fn remove_db(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_database_restored_from_an_older_copy_does_not_make_newer_observations_lose() {
    newer_wins_after(66, |db, backup| {
        remove_db(db);
        std::fs::copy(backup, db).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_state_database_does_not_make_newer_observations_lose() {
    newer_wins_after(67, |db, _| remove_db(db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_the_api_will_not_count_fails_alone_and_the_pass_goes_on() {
    // The API answers every request starting in day two with a permanent error.
    let options = SimOptions { broken: Some((D0 + DAY, D0 + 2 * DAY)), ..SimOptions::default() };
    let world = Scenario::start(spec(68, 4_000, 4), options, D0 + 4 * DAY).await;
    let sim = &world.sim;
    let cfg = || {
        let mut c = with_sync(world.config(""));
        // The day is given up at once, so that the cursor (and the reconciliation) moves past it.
        c.sync.give_up_after = std::time::Duration::from_secs(1);
        c
    };
    run_incremental(cfg(), fixed(D0 + 4 * DAY), D0).await.unwrap();
    let later = D0 + 4 * DAY + 7 * 3600;
    sim.sim.set_now(later);
    let totals = run_incremental(cfg(), fixed(later), D0).await.unwrap();
    let r = totals.reconciled.expect("the second pass reconciled");
    assert_eq!(r.failed, 1, "{r:?}");
    assert!(r.matched >= 3, "the other days were compared: {r:?}");
}
