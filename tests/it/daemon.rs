//! Incremental passes, late status changes, quiet passes, and the daemon as systemd runs it.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::*;
use tasksync::simulator::SimOptions;
use tasksync::state::{INCREMENTAL, State};
use tasksync::sync::incremental::{Reach, plan};
use tasksync::sync::run_incremental;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_first_seen_running_are_final_six_hours_later_even_far_behind_the_cursor() {
    let now1 = D0 + 2 * DAY + 3 * 3600;
    let world = Scenario::start(spec(31, 20_000, 3), SimOptions::default(), now1).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    let cfg = || with_sync(world.config(""));

    run_incremental(cfg(), fixed(now1), D0).await.unwrap();
    assert_exact(&out, &sim.sim.truth(D0, now1 - 120, false));
    let cursor1 = State::open(&dir.path().join("state/state.db")).unwrap().cursor(INCREMENTAL).unwrap();
    assert_eq!(cursor1, Some(now1 - 120), "the cursor is where the pass stopped");
    let early_running: Vec<tasksync::row::Text> = stored(&out)
        .into_iter()
        .filter(|(_, r)| !r.task.is_final() && r.task.create_time < now1 - 120 - 3600 - 3600)
        .map(|(_, r)| r.task.task_id)
        .collect();
    assert!(!early_running.is_empty(), "some tasks well before cursor - lookback were seen unfinished");

    let now2 = now1 + 6 * 3600;
    sim.sim.set_now(now2);
    let totals = run_incremental(cfg(), fixed(now2), D0).await.unwrap();
    assert!(totals.counts.changed > 0 && totals.counts.new > 0);
    let truth = sim.sim.truth(D0, now2 - 120, false);
    assert_exact(&out, &truth);
    let now_final =
        stored(&out).into_iter().filter(|(_, r)| early_running.contains(&r.task.task_id) && r.task.is_final()).count();
    let truly_final = truth.iter().filter(|t| early_running.contains(&t.task_id) && t.is_final()).count();
    assert!(truly_final > 0);
    assert_eq!(now_final, truly_final, "every early task that finished is stored final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_pass_writes_no_file_and_makes_only_the_requests_its_rescan_needs() {
    let now = D0 + 2 * DAY + 3 * 3600;
    let world = Scenario::start(spec(32, 20_000, 3), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = || with_sync(world.config(""));
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    // A pass past the simulator's "now" picks up the settle band; after it nothing is new.
    run_incremental(cfg(), fixed(now + 600), D0).await.unwrap();
    let stamps = file_stamps(&dir.path().join("out"));

    // The next pass, ten minutes later; nothing changed upstream.
    let later = now + 1200;
    let (cursor, all, due) = {
        let s = State::open(&dir.path().join("state/state.db")).unwrap();
        (
            s.cursor(INCREMENTAL).unwrap(),
            s.unfinished_count().unwrap(),
            s.unfinished_due(later - 3 * DAY, i64::MAX, later).unwrap(),
        )
    };
    let p = plan(later, cursor, Reach { start: D0, settle: 120, lookback: 3600 }, &due);
    let budget: u64 = p
        .forward
        .iter()
        .chain(&p.recheck)
        .map(|w| (sim.sim.visible(w.start, w.end, now).len() as u64).max(1).div_ceil(100))
        .sum::<u64>()
        + 1; // a new process asks once for the API's clock

    assert!(!p.recheck.is_empty() && p.recheck.len() < due.len(), "neighbouring re-checks are coalesced");
    assert!(due.len() < all as usize / 2, "older unfinished tasks wait ({} of {} due)", due.len(), all);

    let before = sim.sim.stats.requests.load(Ordering::SeqCst);
    let quiet = run_incremental(cfg(), fixed(later), D0).await.unwrap();
    let requests = sim.sim.stats.requests.load(Ordering::SeqCst) - before;
    assert_eq!((quiet.counts.new, quiet.counts.changed, quiet.counts.files_written), (0, 0, 0));
    assert_eq!(file_stamps(&dir.path().join("out")), stamps, "no file was touched");
    assert!(requests <= budget, "{requests} requests for a budget of {budget}");
    eprintln!("quiet pass: {requests} requests (budget {budget}), {} windows, 0 files written", quiet.windows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_tasks_older_than_reopen_max_age_are_given_up_and_counted() {
    let now = D0 + 2 * DAY;
    let world = Scenario::start(spec(33, 5_000, 2), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let pass = |t: i64| {
        sim.sim.set_now(t);
        run_incremental(with_sync(world.config("")), fixed(t), D0)
    };
    pass(now).await.unwrap();
    // A day later, within reopen_max_age: everything that could finish has, and is stored final.
    pass(now + DAY).await.unwrap();
    let stuck = sim.sim.truth(D0, now - 120, false).iter().filter(|t| !t.is_final()).count() as i64;
    assert!(stuck > 0, "the simulator has stuck tasks");
    let s = State::open(&dir.path().join("state/state.db")).unwrap();
    assert_eq!(s.unfinished_count().unwrap(), stuck, "only the stuck tasks are still re-checked");
    drop(s);
    // Five days later they are older than reopen_max_age (3d): given up, counted, not re-checked.
    pass(now + 5 * DAY).await.unwrap();
    let s = State::open(&dir.path().join("state/state.db")).unwrap();
    assert_eq!(s.given_up_count().unwrap(), stuck);
    assert_eq!(s.unfinished_count().unwrap(), 0);
    let cfg = with_sync(world.config(""));
    let report = tasksync::status::report(&cfg, now + 5 * DAY).unwrap().unwrap();
    assert_eq!(report.given_up, stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_a_seconds_schedule_makes_several_passes_works_beside_a_second_writer_and_stops_on_sigterm() {
    let (sim, start, now) = live_sim(3_000, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), &sim.url, start, 10_000, "*/1 * * * * *");
    let mut daemon = bin().arg("--config").arg(&cfg).arg("run").stderr(Stdio::piped()).spawn().unwrap();
    let d = dir.path().to_path_buf();
    let passes = tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(30), || finished_passes(&d) >= 3))
        .await
        .unwrap();
    if !passes {
        let _ = daemon.kill();
        let mut err = String::new();
        std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("three passes within 30 s on a one-second schedule; the daemon said:\n{err}");
    }

    // A second writer on the same state and output works beside the daemon.
    let second = bin().arg("--config").arg(&cfg).arg("sync").output().unwrap();
    assert_eq!(second.status.code(), Some(0), "{}", String::from_utf8_lossy(&second.stderr));

    let status = bin().arg("--config").arg(&cfg).args(["status", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json prints JSON");
    assert_eq!((report["writer_running"].clone(), report["writers"].clone()), (true.into(), 1.into()), "{report}");
    assert!(report["cursor"].is_string() && report["lag_s"].as_i64().unwrap() < 120, "{report}");
    assert!(report["passes"].as_array().unwrap().len() >= 3);
    let unfinished_stored = stored(&dir.path().join("out")).iter().filter(|(_, r)| !r.task.is_final()).count() as i64;
    assert_eq!(report["unfinished"].as_i64().unwrap(), unfinished_stored, "status counts the unfinished rows");

    sigterm(daemon.id());
    let (code, took) = tokio::task::spawn_blocking(move || {
        let r = wait_exit(&mut daemon, Duration::from_secs(30));
        (r, daemon)
    })
    .await
    .map(|(r, _)| r)
    .unwrap();
    assert_eq!(code, Some(0));
    eprintln!("idle daemon stopped {took:?} after SIGTERM");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now, false));
    let text = bin().arg("--config").arg(&cfg).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("cursor:") && text.contains("idle") && text.contains("pass:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_in_the_middle_of_a_pass_lets_windows_in_flight_commit_and_leaves_the_data_set_exact() {
    // Twelve day-windows, at most four in flight: the shutdown leaves some never started.
    let (sim, start, now) = live_sim(60_000, 11).await;
    let dir = tempfile::tempdir().unwrap();
    // 100 requests per second: the first pass takes several seconds.
    let cfg = load_config(&daemon_config(dir.path(), &sim.url, start, 100, "0 0 * * * *"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tasksync::daemon::Daemon::open(cfg.clone(), tasksync::time::system_clock(), start).await.unwrap();
    let running = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    let tasks = dir.path().join("out/tasks");
    let started = tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(30), || std::fs::read_dir(&tasks).map(|d| d.count()).unwrap_or(0) >= 1)
    })
    .await
    .unwrap();
    assert!(started, "the first pass wrote a partition");
    let asked = Instant::now();
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(tasksync::daemon::SHUTDOWN_GRACE + Duration::from_secs(5), running).await;
    let took = asked.elapsed();
    ended.expect("stopped within the documented bound").unwrap().expect("a shutdown is not an error");
    eprintln!("daemon stopped {took:?} after the shutdown mid-pass");

    // What a reader sees right now: complete files, no duplicate, nothing staged, and the
    // pass recorded as finished (its windows in flight committed, the rest not started).
    let rows = stored(&dir.path().join("out"));
    let ids: std::collections::HashSet<_> = rows.iter().map(|(_, r)| r.task.task_id.clone()).collect();
    assert_eq!(ids.len(), rows.len());
    assert!(rows.len() < 60_000, "the pass was interrupted ({} rows)", rows.len());
    assert_eq!(std::fs::read_dir(dir.path().join("out/_staging")).unwrap().count(), 0);
    assert_eq!(finished_passes(dir.path()), 1, "the interrupted pass ended and was recorded");

    // The next pass completes the data set exactly.
    run_incremental(cfg, tasksync::time::system_clock(), start).await.unwrap();
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_accepted_refused_and_unreachable_plainly() {
    let (sim, start, _) = live_sim(500, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), &sim.url, start, 100, "0 */5 * * * *");
    let ok = bin().arg("--config").arg(&cfg).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success()
            && text.contains("signed request accepted")
            && text.contains("tasks created in the last hour"),
        "{text}"
    );

    let refused = bin()
        .env("TEST_SK", "WrongSecretKey0123456789abcdefXY")
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let line = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(line.contains("refused the credentials") && !line.contains("WrongSecret"), "{line}");

    let cfg = daemon_config(dir.path(), "http://127.0.0.1:9", start, 100, "0 */5 * * * *");
    let down = bin().arg("--config").arg(&cfg).arg("check").output().unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("could not connect"));
}

/// Reads systemd notifications sent to `socket` for `span`, each with when it came.
fn notifications(socket: &std::os::unix::net::UnixDatagram, span: Duration) -> Vec<(Duration, String)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while started.elapsed() < span {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((started.elapsed(), String::from_utf8_lossy(&buf[..n]).into_owned()));
        }
    }
    got
}

#[test]
fn the_watchdog_is_fed_only_while_passes_make_progress() {
    // An API that accepts connections and never answers: the first pass hangs.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in hung.incoming() {
            open.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = daemon_config(dir.path(), &url, D0, 100, "0 0 0 1 1 *");
    let text = std::fs::read_to_string(&path).unwrap().replace("timeout = \"5s\"", "timeout = \"60s\"");
    std::fs::write(&path, text).unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut child = bin()
        .args(["--config", path.to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();
    const SPAN: Duration = Duration::from_secs(6);
    let got = notifications(&socket, SPAN);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("run.err")).unwrap_or_default();
    let ready = got.iter().find(|(_, m)| m.contains("READY=1")).map(|(t, _)| *t);
    let ready = ready.unwrap_or_else(|| panic!("{got:?} {log}"));
    let pings: Vec<Duration> = got.iter().filter(|(_, m)| m.contains("WATCHDOG=1")).map(|(t, _)| *t).collect();
    assert!(!pings.is_empty(), "fed while the pass was young: {got:?}");
    // Timed from READY, not from the spawn, so that a slow start on a loaded machine does
    // not count: the pass begins right after READY, and 1 s without an answer ends the
    // pings (at most half an interval later, with slack for a loaded scheduler).
    let last = *pings.last().unwrap();
    assert!(last < ready + Duration::from_millis(2000), "no ping once nothing answered for 1 s: {got:?}");
    assert!(ready + Duration::from_secs(3) < SPAN, "READY came early enough to see the pings stop: {got:?}");
}
