//! Writers that share an output: a backfill beside the running service, `kill -9` of
//! either, and two configs (two vendor accounts) writing one data set. Neither loses the
//! other's work.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::{FaultSpec, SimOptions};
use tasksync::sync::{Context, PassKind, run_pass};

fn spawn(args: &[&str], config: &std::path::Path) -> Child {
    bin().arg("--config").arg(config).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn backfill(config: &std::path::Path, from: i64, to: i64) -> Child {
    spawn(&["sync", "--from", &from.to_string(), "--to", &to.to_string()], config)
}

/// A simulator whose data ends a minute before the wall clock, with faults and unstable
/// paging, its clock frozen so that the truth holds still.
async fn faulty_live_sim(tasks: u64, days: i64) -> (Sim, i64, i64) {
    live_sim_with(
        50,
        tasks,
        days,
        SimOptions { faults: FaultSpec::quick(100), unstable_order: true, ..SimOptions::default() },
    )
    .await
}

async fn wait(mut child: Child) -> Option<i32> {
    tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(120)).0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_beside_the_running_service_on_the_same_partitions_loses_nothing() {
    let (sim, start, now) = faulty_live_sim(40_000, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), &sim.url, start, 10_000, "*/1 * * * * *");
    let daemon = spawn(&["run"], &cfg);
    // The backfill walks the same days as the daemon's first passes, at the same time.
    let backfill = backfill(&cfg, start, now - 120);
    assert_eq!(wait(backfill).await, Some(0), "the backfill runs beside the service");
    let d = dir.path().to_path_buf();
    let passes = tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(60), || finished_passes(&d) >= 3));
    assert!(passes.await.unwrap(), "the daemon kept passing");
    sigterm(daemon.id());
    assert_eq!(wait(daemon).await, Some(0));
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now - 60, false));
    let v = bin().arg("--config").arg(&cfg).arg("verify").output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_either_writer_leaves_the_other_and_the_data_exact() {
    let (sim, start, now) = faulty_live_sim(60_000, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = daemon_config(dir.path(), &sim.url, start, 400, "*/2 * * * * *");
    let mut daemon = spawn(&["run"], &cfg);
    // The backfill dies first, mid-way; the daemon goes on.
    let mut first = backfill(&cfg, start, now - 120);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    // Then the daemon dies mid-pass while the backfill, run again, finishes.
    let second = backfill(&cfg, start, now - 120);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert_eq!(wait(second).await, Some(0), "the resumed backfill finishes beside a dead daemon's leftovers");
    // A last pass of the service, restarted, completes what the dead one had begun.
    let last = spawn(&["sync"], &cfg);
    assert_eq!(wait(last).await, Some(0));
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now - 60, false));
    let staging: Vec<_> = std::fs::read_dir(dir.path().join("out/_staging")).unwrap().collect();
    assert!(staging.is_empty(), "the dead writers' staging areas were removed by the next writer: {staging:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_configs_writing_one_data_set_at_once_keep_each_others_rows() {
    let now = D0 + 3 * DAY;
    // Two accounts: seeds far apart give task ids apart, as two accounts' tasks are.
    let faults = SimOptions { faults: FaultSpec::quick(100), unstable_order: true, ..SimOptions::default() };
    let (a, b) = (
        start_sim(spec(51, 20_000, 3), faults.clone(), now).await,
        start_sim(spec(51 | 1 << 40, 20_000, 3), faults, now).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let out = dir.path().join("shared");
    let shared = |cfg: std::path::PathBuf| {
        let text = std::fs::read_to_string(&cfg).unwrap();
        let out_line = text.lines().find(|l| l.starts_with("output_dir")).unwrap().to_string();
        std::fs::write(&cfg, text.replace(&out_line, &format!("output_dir = \"{}\"", out.display()))).unwrap();
        cfg
    };
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let (cfg_a, cfg_b) = (shared(config_file(&dir_a, &a.url, "", "")), shared(config_file(&dir_b, &b.url, "", "")));
    let (run_a, run_b) = (backfill(&cfg_a, D0, D0 + 3 * DAY), backfill(&cfg_b, D0, D0 + 3 * DAY));
    assert_eq!((wait(run_a).await, wait(run_b).await), (Some(0), Some(0)));
    let mut truth = a.sim.truth(D0, D0 + 3 * DAY, false);
    truth.extend(b.sim.truth(D0, D0 + 3 * DAY, false));
    assert_exact(&out, &truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_another_writers_partition_lock_counts_as_progress_for_the_watchdog() {
    // The service's watchdog is fed while passes make progress; a window waiting minutes
    // for a backfill that holds its partition must not look like a hung service.
    let now = D0 + DAY + 600;
    let world = Scenario::start(spec(80, 1_000, 1), SimOptions::default(), now).await;
    let ctx = Arc::new(Context::open(world.config(""), fixed(now)).unwrap());
    let other_writer = tasksync::sink::store::lock::take(&ctx.sink.partition_lock("2021-10-01")).await.unwrap();
    let c = ctx.clone();
    let pass = tokio::spawn(async move {
        run_pass(&c, PassKind::Backfill(Window::new(D0, D0 + DAY)), Arc::new(AtomicBool::new(false))).await
    });
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let quiet = ctx.client.stats.since_progress();
        assert!(quiet < Duration::from_millis(450), "no progress for {quiet:?} while waiting for a live writer");
    }
    assert!(!pass.is_finished(), "the window waits for the lock");
    drop(other_writer);
    pass.await.unwrap().unwrap();
}

#[test]
fn a_writer_on_a_btrfs_subvolume_is_seen_running_and_its_area_is_no_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = Mounted::btrfs(dir.path()) else { return };
    // A subvolume reports a device of its own to stat, not the one the kernel's lock table names.
    let sub = dir.path().join("data");
    let made = std::process::Command::new("btrfs").args(["-q", "subvolume", "create"]).arg(&sub).status().unwrap();
    assert!(made.success());
    let area = tasksync::sink::store::staging::StagingArea::open(&sub).unwrap();
    assert_eq!(tasksync::sink::store::staging::writers_running(&sub), 1, "status would say idle");
    assert!(tasksync::sink::store::staging::orphans(&sub).is_empty(), "verify would flag a running writer's area");
    drop(area);
    assert_eq!(tasksync::sink::store::staging::writers_running(&sub), 0);
}
