//! Crash tests: `kill -9` at random moments of backfills against a faulty simulator, and
//! an abort at each named crash point of the write path. After every crash the data set
//! must be readable, duplicate-free and complete files only; after a final run, exact.
//! Runs with `--features crash-points` (as `.ci/run` does).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use tasksync::simulator::dataset::Rng;
use tasksync::simulator::{FaultSpec, SimOptions};
use tasksync::state::State;

fn sync(config: &Path, from: i64, to: i64) -> Command {
    let mut c = bin();
    c.env_remove("TASKSYNC_CRASH_AT")
        .arg("--config")
        .arg(config)
        .args(["sync", "--from", &from.to_string(), "--to", &to.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// What any reader may rely on at any moment: every partition holds one complete,
/// readable file, and no task_id appears twice.
fn assert_consistent(out: &Path) -> usize {
    let rows = stored(out);
    let mut ids = std::collections::HashSet::new();
    for (_, r) in &rows {
        assert!(ids.insert(r.task.task_id.clone()), "task {} appears twice after a crash", r.task.task_id);
    }
    rows.len()
}

/// A final pass over the whole range with a new job id re-reads everything: the data set
/// must then equal the truth, with nothing stray anywhere.
async fn finish_and_check(sim: &Sim, dir: &Path, config: &Path, from: i64, to: i64) {
    let status = tokio::task::spawn_blocking({
        let config = config.to_path_buf();
        move || sync(&config, from - DAY, to).status().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    let out = dir.join("out");
    assert_exact(&out, &sim.sim.truth(from - DAY, to, false));
    assert_eq!(State::open(&state_db(dir)).unwrap().integrity_check().unwrap(), "ok");
    let top: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(
        top.iter().all(|n| ["tasks", "task_history", "_staging", "_rejects", "_locks"].contains(&n.as_str())),
        "stray entries in the output: {top:?}"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check_duckdb.py");
    let n = sim.sim.truth(from - DAY, to, false).len();
    let check = Command::new("python3").arg(script).arg(&out).arg(n.to_string()).output().unwrap();
    assert!(
        check.status.success(),
        "DuckDB: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9s_at_random_moments_lose_nothing_and_duplicate_nothing() {
    let days = 40;
    let now = D0 + (days + 2) * DAY;
    let options = SimOptions {
        keys: Some((AK.into(), SK.into())),
        faults: FaultSpec::quick(150),
        unstable_order: true,
        ..SimOptions::default()
    };
    let world = Scenario::start(spec(77, 60_000, days + 2), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let config =
        config_file(dir.path(), &sim.url, "max_retries = 20\nrepage_attempts = 20\nretry_max_delay = \"10ms\"", "");
    let mut rng = Rng::new(2024);
    let (mut kills, mut completed, mut job, mut tries) = (0, 0, 0i64, 0);
    // A kill lands at a random moment of a run: within the time the last whole run took, so
    // that the share of kills does not depend on how fast this machine runs one.
    let mut run_ms = 700;
    let started = Instant::now();
    while kills < 20 && tries < 400 {
        tries += 1;
        // Each job is a new range, so it re-reads and rewrites partitions the others wrote.
        let (from, to) = (D0 + (job % 3) * DAY, D0 + (job % 3 + days - 1) * DAY);
        let delay = Duration::from_millis(rng.range(5, run_ms.max(20)));
        let (c, outcome) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || {
                let spawned = Instant::now();
                let mut child = sync(&config, from, to).spawn().unwrap();
                std::thread::sleep(delay);
                match child.try_wait().unwrap() {
                    Some(status) => (child, Some((status, spawned.elapsed()))),
                    None => {
                        child.kill().unwrap(); // SIGKILL
                        child.wait().unwrap();
                        (child, None)
                    }
                }
            }
        })
        .await
        .unwrap();
        drop(c);
        match outcome {
            None => kills += 1,
            Some((status, took)) => {
                assert!(status.success(), "a run between crashes failed");
                completed += 1;
                job += 1;
                run_ms = took.as_millis() as u64;
            }
        }
        assert_consistent(&dir.path().join("out"));
        sim.sim.set_now(sim.sim.now() + 600); // tasks move on between runs
    }
    assert!(kills >= 20, "only {kills} kills landed in {tries} runs");
    eprintln!("{kills} kill -9s survived, {completed} runs completed between them, in {:?}", started.elapsed());
    finish_and_check(sim, dir.path(), &config, D0 + DAY, D0 + (days + 2) * DAY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_at_each_named_crash_point_is_recovered_exactly() {
    for point in [
        "after_staging_write",
        "after_rename",
        "between_tasks_and_history",
        "after_history_rename",
        "before_checkpoint",
    ] {
        let now = D0 + 6 * DAY;
        let world = Scenario::start(spec(78, 12_000, 6), SimOptions::default(), now).await;
        let (sim, dir) = (&world.sim, &world.dir);
        let config =
            config_file(dir.path(), &sim.url, "max_retries = 20\nrepage_attempts = 20\nretry_max_delay = \"10ms\"", "");
        let (from, to) = (D0 + DAY, D0 + 6 * DAY);
        // A first complete run over the last three days, so that the crashing runs both
        // replace existing files and write new partitions (which guarantees several hits).
        assert!(sync(&config, D0 + 3 * DAY, to).status().unwrap().success());
        sim.sim.set_now(now + 6 * 3600);
        for nth in [1, 2] {
            let crashed =
                sync(&config, from - DAY, to).env("TASKSYNC_CRASH_AT", format!("{point}:{nth}")).status().unwrap();
            assert!(!crashed.success(), "{point}:{nth} aborted the run");
            assert_consistent(&dir.path().join("out"));
        }
        finish_and_check(sim, dir.path(), &config, from, to).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_the_state_database_is_locked_ends_the_process_and_the_rerun_is_exact() {
    // A bug that panics inside state database work would poison its lock: every later
    // pass would fail while the process lived on. The process must end instead (exit 1,
    // one line), and the next run finish exactly.
    let now = D0 + 3 * DAY;
    let world = Scenario::start(spec(79, 6_000, 3), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let config = config_file(dir.path(), &sim.url, "", "");
    let out =
        sync(&config, D0, now).env("TASKSYNC_CRASH_AT", "panic@in_state:4").stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("tasksync: error: internal error (a bug") && last.contains("in_state"), "{stderr}");
    assert_consistent(&dir.path().join("out"));
    assert!(sync(&config, D0, now).status().unwrap().success());
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, now, false));
}
