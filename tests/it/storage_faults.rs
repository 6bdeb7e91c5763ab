//! Storage faults: a read-only output, a read-only state directory, a disk that fills up
//! mid-write. Each gives exit 1 with one sentence, leaves earlier files intact and the
//! checkpoint unmoved, and the next run succeeds once the fault is gone.
//! Read-only filesystems are bind mounts in a private mount namespace (`unshare -m`, root);
//! a disk that is full is a tmpfs of 64 KiB mounted on a temporary directory (root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use tasksync::simulator::SimOptions;

/// Runs `tasksync sync --from --to` under `bash -c PREFIX; exec tasksync ...`.
fn sync_with(prefix: &str, config: &Path, from: i64, to: i64) -> Output {
    let script = format!("{prefix} exec \"$0\" --config \"$1\" sync --from {from} --to {to}");
    let mut cmd = if prefix.contains("mount") {
        let mut c = Command::new("unshare");
        c.args(["-m", "bash", "-c"]);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg("-c");
        c
    };
    cmd.arg(script).arg(env!("CARGO_BIN_EXE_tasksync")).arg(config).output().unwrap()
}

/// Every partition file's bytes, to prove nothing earlier was damaged.
fn snapshot(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    file_stamps(out)
        .into_iter()
        .map(|(p, _)| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_output_read_only_state_and_a_full_disk_each_fail_cleanly_and_recover() {
    let now = D0 + 7 * DAY;
    let world = Scenario::start(spec(90, 35_000, 7), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let config = config_file(dir.path(), &sim.url, "auth = \"none\"", "");
    let out = dir.path().join("out");
    let from = D0;
    let first = tokio::task::spawn_blocking({
        let c = config.clone();
        move || sync_with("", &c, from, D0 + 3 * DAY)
    })
    .await
    .unwrap();
    assert!(first.status.success(), "{}", last_stderr_line(&first));

    let faults = [
        ("read-only output", format!("mount -o bind,ro {0} {0} &&", out.display()), "Read-only file system"),
        (
            "read-only state",
            format!("mount -o bind,ro {0} {0} &&", dir.path().join("state").display()),
            "Read-only file system",
        ),
        ("full disk", "trap '' XFSZ; ulimit -f 200;".to_string(), "File too large"),
    ];
    for (i, (name, prefix, phrase)) in faults.iter().enumerate() {
        // Each fault meets a new job that reaches one day further: a partition to write.
        let before = snapshot(&out);
        let range_to = D0 + (4 + i as i64) * DAY;
        let failed = tokio::task::spawn_blocking({
            let (c, p) = (config.clone(), prefix.clone());
            move || sync_with(&p, &c, from, range_to)
        })
        .await
        .unwrap();
        assert_eq!(failed.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&failed.stderr));
        let line = last_stderr_line(&failed);
        assert_eq!(line.matches(phrase).count(), 1, "{name}: the cause is said once: {line}");
        assert!(
            line.starts_with("tasksync: error: ")
                && line.contains(phrase)
                && line.contains(dir.path().to_str().unwrap()),
            "{name}: {line}"
        );
        eprintln!("{name}: {line}");
        // Earlier files are intact; whatever was replaced is complete; no job finished.
        let after = snapshot(&out);
        for (path, bytes) in &after {
            if let Some((_, old)) = before.iter().find(|(p, _)| p == path)
                && old != bytes
            {
                assert!(name.contains("disk"), "{name}: {} changed although nothing could be written", path.display());
            }
        }
        let rows = stored(&out);
        let ids: std::collections::HashSet<_> = rows.iter().map(|(_, r)| &r.task.task_id).collect();
        assert_eq!(ids.len(), rows.len(), "{name}: no duplicates");
        let state = tasksync::state::State::open(&dir.path().join("state/state.db")).unwrap();
        assert_eq!(
            job_finished_at(&state, tasksync::plan::Window::new(from, range_to)),
            None,
            "{name}: the job is not recorded as finished"
        );
        drop(state);

        // The fault gone, the same command finishes the job exactly.
        let again = tokio::task::spawn_blocking({
            let c = config.clone();
            move || sync_with("", &c, from, range_to)
        })
        .await
        .unwrap();
        assert!(again.status.success(), "{name}: {}", last_stderr_line(&again));
        assert_exact(&out, &sim.sim.truth(from, range_to, false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_file_that_cannot_be_read_leaves_only_its_day_behind_and_is_repaired_by_moving_it_aside() {
    let now = D0 + 3 * DAY + 600;
    let world = Scenario::start(spec(91, 6_000, 3), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    let range = tasksync::plan::Window::new(D0, D0 + 3 * DAY);
    let cfg = || world.config("");
    tasksync::sync::run_backfill(cfg(), fixed(now), range).await.unwrap();
    // Day two's file is cut to nothing (a full disk in an older build, a bad copy).
    let broken = out.join("tasks/create_date=2021-10-02/part-0.parquet");
    std::fs::write(&broken, b"").unwrap();
    let later = now + 6 * 3600;
    sim.sim.set_now(later);
    let again = tasksync::plan::Window::new(D0 - DAY, D0 + 3 * DAY);
    let totals = tasksync::sync::run_backfill(cfg(), fixed(later), again).await.unwrap();
    assert_eq!(totals.left_behind.len(), 1, "{totals}");
    let reason = &totals.left_behind[0];
    assert!(reason.to_string().starts_with("[2021-10-02T00:00:00Z, 2021-10-03T00:00:00Z)"), "{reason}");
    assert!(
        reason.to_string().contains(&broken.display().to_string())
            && reason.to_string().contains("move the file aside"),
        "{reason}"
    );
    assert!(totals.windows >= 3, "the other days went on: {totals}");
    // The repair README gives: move it aside, sync that day again.
    std::fs::rename(&broken, dir.path().join("part-0.parquet.broken")).unwrap();
    std::fs::remove_dir(broken.parent().unwrap()).unwrap();
    tasksync::sync::run_backfill(cfg(), fixed(later + 60), again).await.unwrap();
    let stored = stored(&out).len();
    assert_eq!(stored, sim.sim.truth(D0, D0 + 3 * DAY, false).len());
}

#[test]
fn an_append_to_the_rejects_file_cut_short_by_a_full_disk_leaves_no_torn_line() {
    use tasksync::sink::rejects::RejectLog;
    use tasksync::source::decode::Reject;
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = Mounted::tmpfs(dir.path(), 64) else { return };
    let log = RejectLog::new(dir.path(), D0, None);
    let reject =
        |i: usize| Reject { reason: "no task_id".into(), raw: serde_json::json!({ "n": i, "pad": "x".repeat(900) }) };
    log.append("w1", D0, &[reject(0)]).unwrap();
    // Fill the disk but for a few KiB, then append more than fits: the write is cut short.
    let filler = dir.path().join("filler");
    let free = free_bytes(dir.path());
    std::fs::write(&filler, vec![0u8; (free - 6 * 1024) as usize]).unwrap();
    let many: Vec<Reject> = (1..20).map(reject).collect();
    let err = log.append("w2", D0, &many).unwrap_err().to_string();
    assert!(err.contains("No space left on device") && err.contains("_rejects"), "{err}");
    std::fs::remove_file(&filler).unwrap();
    log.append("w3", D0, &[reject(99)]).unwrap();

    let file = std::fs::read_dir(dir.path().join("_rejects")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a torn line ({e}): {l:.80}")))
        .collect();
    let windows: Vec<&str> = lines.iter().map(|l| l["window"].as_str().unwrap()).collect();
    assert_eq!(windows, ["w1", "w3"], "the cut-short append left nothing behind");
}

/// Bytes free on the file system holding `path`, from `df`.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
}
