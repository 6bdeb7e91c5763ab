//! An API that does not behave as assumed: a clock hours behind ours, records listed late
//! while the clock runs, a wrong `api.local_time_zone`, a range it fails on for good. Each
//! pass commits what it can exactly, leaves the rest for the next pass (recorded, shown,
//! retried first), never moves the cursor past it, and never fails as a whole.

use std::sync::Arc;

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::SimOptions;
use tasksync::state::{INCREMENTAL, State};
use tasksync::sync::{run_backfill, run_incremental};

/// Every stored row is a task the API has, once, in the partition of its create date.
fn assert_each_row_is_a_real_task_once(out: &std::path::Path, truth: &[tasksync::row::TaskRow]) {
    let truth: std::collections::HashMap<_, _> = truth.iter().map(|t| (t.task_id.as_str(), t.create_time)).collect();
    let mut seen = std::collections::HashSet::new();
    for (date, row) in stored(out) {
        assert!(seen.insert(row.task.task_id.clone()), "task {} is stored twice", row.task.task_id);
        assert_eq!(truth.get(row.task.task_id.as_str()), Some(&row.task.create_time), "task {}", row.task.task_id);
        assert_eq!(date, tasksync::time::utc_date(row.task.create_time));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_clock_hours_behind_ours_is_never_passed_and_the_next_pass_completes_the_data() {
    let ours = D0 + 2 * DAY + 12 * 3600;
    let world = Scenario::start(spec(41, 20_000, 3), SimOptions::default(), ours - 6 * 3600).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = || with_sync(world.config(""));
    let first = run_incremental(cfg(), fixed(ours), D0).await.expect("the pass succeeds");
    assert!(first.left_behind.is_empty(), "{:?}", first.left_behind);
    let cursor = State::open(&state_db(dir.path())).unwrap().cursor(INCREMENTAL).unwrap().unwrap();
    assert!(cursor <= ours - 6 * 3600 - 120, "the cursor stops at the API's now minus settle, not ours");

    // The API catches up; tasks it could not list before are there now, hours before our
    // cursor's lookback would reach. Six hours on, every unfinished task is due again.
    let later = ours + 6 * 3600;
    sim.sim.set_now(later);
    run_incremental(cfg(), fixed(later), D0).await.expect("the second pass succeeds");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, later - 120, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_listed_late_while_the_clock_runs_are_left_behind_then_completed() {
    let now = D0 + 2 * DAY + 12 * 3600;
    let start = now - 1200;
    // Tasks are listed up to half an hour after their create_time (less than the lookback).
    let options = SimOptions { late_s: 1800, ..SimOptions::default() };
    let sim = start_sim(spec(42, 200_000, 3), options, now).await;
    // Every request moves the API's clock on, and late records keep appearing in the
    // newest windows while they are paged: their `total` never settles.
    sim.sim.advance_per_request(5);
    let dir = tempfile::tempdir().unwrap();
    let clock = {
        let sim = sim.sim.clone();
        Arc::new(move || sim.now()) as tasksync::time::Clock
    };
    let cfg = || with_sync(config(&sim.url, dir.path(), SK, "repage_attempts = 2\nconcurrency = 1"));
    let first = run_incremental(cfg(), clock.clone(), start).await.expect("a pass never fails for an unsettled range");
    assert!(first.counts.unsettled > 0, "the API's total kept growing while the newest range was paged: {first:?}");
    assert!(first.counts.new > 0, "what settled was committed");
    sim.sim.advance_per_request(0);
    let out = dir.path().join("out");
    assert_each_row_is_a_real_task_once(&out, &sim.sim.truth(start, sim.sim.now(), false));
    let state = State::open(&state_db(dir.path())).unwrap();
    let left = state.left_behind(None).unwrap();
    assert_eq!(left.len(), first.left_behind.len(), "every range left behind is recorded: {left:?}");
    assert!(left.iter().all(|l| l.reason.contains("incomplete")), "{left:?}");
    let cursor = state.cursor(INCREMENTAL).unwrap().unwrap_or(start);
    assert!(left.iter().all(|l| cursor <= l.start), "the cursor ({cursor}) never passes a range left behind");

    // Later, with every record listed and the clock still: the next pass completes it.
    let later = sim.sim.now() + 6 * 3600;
    sim.sim.set_now(later);
    let second = run_incremental(cfg(), fixed(later), start).await.unwrap();
    assert!(second.left_behind.is_empty(), "{:?}", second.left_behind);
    assert!(State::open(&state_db(dir.path())).unwrap().left_behind(None).unwrap().is_empty(), "nothing left behind");
    // Tasks of the last half hour may still be unlisted (their lag is up to 1800 s); all
    // before are there, exactly.
    let listed = later - 1800;
    let rows: Vec<_> = stored(&out).into_iter().filter(|(_, r)| r.task.create_time < listed).collect();
    let truth = sim.sim.truth(start, listed, false);
    assert_eq!(rows.len(), truth.len(), "stored rows vs truth");
    let by_id: std::collections::HashMap<_, _> = rows.iter().map(|(_, r)| (r.task.task_id.as_str(), &r.task)).collect();
    for t in &truth {
        assert_eq!(by_id.get(t.task_id.as_str()), Some(&t), "task {}", t.task_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_local_time_zone_is_a_clear_error_and_commits_nothing_for_the_bad_windows() {
    let now = D0 + 2 * DAY;
    let world = Scenario::start(spec(43, 2_000, 2), SimOptions::default(), now).await;
    let dir = &world.dir;
    // The simulator writes its older-format times in +08:00.
    let cfg = world.config("local_time_zone = \"+00:00\"");
    let totals = run_backfill(cfg, fixed(now), Window::new(D0, D0 + 2 * DAY)).await.expect("no failed run");
    assert_eq!(totals.left_behind.len(), 2, "both days are left behind: {:?}", totals.left_behind);
    let reason = &totals.left_behind[0];
    assert!(
        reason.to_string().contains("outside the window")
            && reason.to_string().contains("api.local_time_zone = +00:00")
            && reason.to_string().contains("read in +08:00 they would fall inside"),
        "{reason}"
    );
    assert!(stored(&dir.path().join("out")).is_empty(), "nothing is committed for the bad windows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_the_api_fails_on_for_good_is_left_behind_while_every_other_window_commits() {
    let now = D0 + 3 * DAY + 3600;
    let options = SimOptions { broken: Some((D0 + DAY, D0 + 2 * DAY)), ..SimOptions::default() };
    let world = Scenario::start(spec(44, 6_000, 4), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = || with_sync(world.config(""));
    for pass in 1..=2 {
        let totals = run_incremental(cfg(), fixed(now + pass * 600), D0).await.expect("the pass goes on");
        assert_eq!(totals.left_behind.len(), 1, "{:?}", totals.left_behind);
        assert!(
            totals.left_behind[0].to_string().starts_with("[2021-10-02T00:00:00Z, 2021-10-03T00:00:00Z)"),
            "{:?}",
            totals.left_behind
        );
        let state = State::open(&state_db(dir.path())).unwrap();
        assert_eq!(state.cursor(INCREMENTAL).unwrap(), Some(D0 + DAY), "the cursor stops before the broken day");
        let left = state.left_behind(None).unwrap();
        assert_eq!((left.len(), left[0].attempts), (1, pass), "{left:?}");
        assert!(left[0].reason.contains("code 1001"), "{}", left[0].reason);
    }
    let mut expected = sim.sim.truth(D0, D0 + DAY, false);
    expected.extend(sim.sim.truth(D0 + 2 * DAY, now + 1200 - 120, false));
    assert_exact(&dir.path().join("out"), &expected);
    let report = tasksync::status::report(&with_sync(world.config("")), now).unwrap().unwrap();
    assert_eq!(report.left_behind.len(), 1);
    assert!(report.to_string().contains("left:       incremental [2021-10-02"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepping_back_between_passes_never_drops_a_change() {
    let t = D0 + DAY + 3600;
    let world = Scenario::start(spec(47, 5_000, 2), SimOptions::default(), t).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    world.backfill(t, Window::new(D0, D0 + DAY)).await.unwrap();
    let running: Vec<tasksync::row::Text> =
        stored(&out).into_iter().filter(|(_, r)| !r.task.is_final()).map(|(_, r)| r.task.task_id).collect();

    // Six hours on most have finished, and our clock has stepped back five minutes (an
    // NTP correction): a new backfill job reads the day again.
    sim.sim.set_now(t + 6 * 3600);
    let truth = sim.sim.truth(D0, D0 + DAY + 1, false);
    let finished = truth.iter().filter(|t| t.is_final() && running.contains(&t.task_id)).count();
    assert!(finished > 0, "some tasks stored unfinished have finished since");
    let totals = world.backfill(t - 300, Window::new(D0, D0 + DAY + 1)).await.unwrap();
    assert!(totals.counts.changed as usize >= finished, "every finished task was applied: {totals}");
    assert_exact(&out, &sim.sim.truth(D0, D0 + DAY + 1, false));
    let state = State::open(&state_db(dir.path())).unwrap();
    let still = sim.sim.truth(D0, D0 + DAY + 1, false).iter().filter(|t| !t.is_final()).count();
    assert_eq!(state.unfinished_count().unwrap() as usize, still, "the state database tracks what was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_rate_limit_below_ours_answers_429_with_retry_after_and_the_data_stays_exact() {
    let now = D0 + DAY + 3600;
    // ~33 pages against a burst of 10 then 10/s: any build sending more than ~15
    // requests/s meets the limit (at 20/s, only 4 of 37 were refused here: too near).
    let options = SimOptions { rate_limit: Some(10), ..SimOptions::default() };
    let world = Scenario::start(spec(44, 3_000, 1), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    // Retry-After (whole seconds) is honoured up to retry_max_delay.
    let cfg = world.config("retry_max_delay = \"2s\"\nrequests_per_second = 1000");
    let totals = run_backfill(cfg, fixed(now), Window::new(D0, D0 + DAY)).await.unwrap();
    let throttled = sim.sim.stats.throttled.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("requests={} throttled={throttled}", totals.requests);
    assert!(throttled > 0, "the gateway refused some requests");
    assert!(totals.retries >= throttled, "each 429 was retried: {totals:?}, {throttled} throttled");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_away_api_answers_no_sooner_than_its_latency() {
    let options = SimOptions { latency_ms: 200, ..SimOptions::default() };
    let sim = start_sim(spec(45, 100, 1), options, D0 + DAY).await;
    let url = format!("{}/api/list_task?start_time={D0}&end_time={}&start_num=0&count=10", sim.url, D0 + DAY);
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..4).map(|_| reqwest::get(url.clone()))).await;
    let took = started.elapsed();
    assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|r| r.status() == 200)));
    // Jittered by a quarter: no answer comes before 150 ms.
    assert!(took >= std::time::Duration::from_millis(150), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_limit_below_our_rate_is_found_and_paced_under_without_a_storm_of_429s() {
    // The vendor's gateway allows 20 requests/s (a burst of 20, then one every 50 ms);
    // we are configured for 100,000 with 8 in flight. Its 429s ask to wait a second, but
    // retry_max_delay caps a retry's wait at 20 ms here. The limit sits far below what
    // even a debug build on a loaded machine sends (a CI run under load sent fewer than
    // 100 requests/s and never met a limit of 100): the test must meet the limit on any
    // machine. ~160 requests: 8 s at the limit; about 16 are refused while the limit is
    // found (two per request in flight, `pace_model_tests.rs`), few after.
    let options = SimOptions { rate_limit: Some(20), ..SimOptions::default() };
    let world = Scenario::start(spec(45, 15_000, 2), options, D0 + 3 * DAY).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = world.config("concurrency = 8\nmax_retries = 30");
    let totals = run_backfill(cfg, fixed(D0 + 3 * DAY), Window::new(D0, D0 + 2 * DAY)).await.expect("the backfill");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + 2 * DAY, false));
    let throttled = sim.sim.stats.throttled.load(std::sync::atomic::Ordering::SeqCst);
    let share = throttled as f64 / totals.requests as f64;
    eprintln!("requests={} throttled={throttled} share={share:.3}", totals.requests);
    assert!(throttled > 0, "the limit was met");
    assert!(share < 0.15, "{throttled} of {} requests were refused", totals.requests);
}
