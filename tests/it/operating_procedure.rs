//! The "Backfill beside the service" procedure of docs/operating.md, run as written: every line of its
//! block, against a simulator, with the service running. `/etc/tasksync` becomes a
//! scratch directory, `sudo` is dropped (the test is the operator), and the
//! `systemctl start` line runs what the shipped unit's `ExecStart=` runs for that
//! instance, with the unit's credential. `journalctl` lines have nothing to show here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use tasksync::simulator::SimOptions;
use tasksync::simulator::dataset::DatasetSpec;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The shell lines of docs/operating.md's block between the procedure markers.
fn procedure() -> Vec<String> {
    let readme = std::fs::read_to_string(format!("{MANIFEST}/docs/operating.md")).unwrap();
    let block =
        readme.split("<!-- procedure: backfill -->").nth(1).unwrap().split("<!-- end procedure -->").next().unwrap();
    block.lines().filter(|l| !l.starts_with("```") && !l.trim().is_empty()).map(str::to_string).collect()
}

/// The backfill unit's command line for `instance`, as systemd would run it.
fn unit_exec_start(instance: &str, etc: &Path) -> String {
    let unit = std::fs::read_to_string(format!("{MANIFEST}/systemd/tasksync-backfill@.service")).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    exec.replace("/usr/bin/tasksync", env!("CARGO_BIN_EXE_tasksync"))
        .replace("/etc/tasksync", &etc.display().to_string())
        .replace("%i", instance)
}

/// Runs one line of the procedure as the operator would, in `sh`.
fn run_line(line: &str, etc: &Path) -> Option<(String, std::process::Output)> {
    let line = line.split("  #").next().unwrap().trim();
    let command = if let Some(unit) = line.strip_prefix("sudo systemctl start ") {
        let instance = unit.trim_matches('\'').strip_prefix("tasksync-backfill@").unwrap();
        format!("CREDENTIALS_DIRECTORY={} {}", etc.display(), unit_exec_start(instance, etc))
    } else if line.starts_with("journalctl ") {
        return None;
    } else {
        line.replace("sudo -u tasksync ", "").replace("sudo ", "").replace("/etc/tasksync", &etc.display().to_string())
    };
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tasksync")).parent().unwrap().display().to_string();
    let path = format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let out =
        Command::new("sh").arg("-c").arg(&command).env("PATH", path).env_remove("TASKSYNC_CONFIG").output().unwrap();
    Some((command, out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_backfill_procedure_works_as_written_beside_the_running_service() {
    let (from, to) =
        (tasksync::time::parse_instant("2025-01-01").unwrap(), tasksync::time::parse_instant("2025-06-01").unwrap());
    let spec = DatasetSpec { seed: 60, tasks: 4_000, start: from, end: to + 3600, hot_hour: None, bad_per_million: 0 };
    let sim =
        start_sim(spec, SimOptions { keys: Some((AK.into(), SK.into())), ..SimOptions::default() }, to + 7200).await;
    let dir = tempfile::tempdir().unwrap();
    let etc: PathBuf = dir.path().join("etc/tasksync");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("secret_key"), format!("{SK}\n")).unwrap();
    // The shipped config's keys, pointed at the simulator and the scratch directory.
    let shipped = std::fs::read_to_string(format!("{MANIFEST}/config/tasksync.toml")).unwrap();
    let config = shipped
        .replace("https://transcode.example.com", &sim.url)
        .replace("CWIs00000000i3x0", AK)
        .replace("/var/lib/tasksync", &dir.path().join("var").display().to_string())
        .replace("start = \"2021-10-01\"", "start = \"2025-05-31\"")
        // The service serves metrics, on a port free here (the backfill beside it leaves
        // the port to the service).
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", free_port()));
    assert!(config.contains("secret_key_file = \"secret_key\""), "the shipped config reads the unit's credential");
    assert!(!config.contains(":9464"), "the metrics port was moved");
    std::fs::write(etc.join("tasksync.toml"), config).unwrap();

    // The service runs, with its own credential, through the whole procedure.
    let exec = unit_exec_start("x", &etc).replace("sync --range x", "run");
    let mut service = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {exec}"))
        .env("CREDENTIALS_DIRECTORY", &etc)
        .stderr(std::fs::File::create(dir.path().join("service.log")).unwrap())
        .spawn()
        .unwrap();
    let mut outputs = Vec::new();
    for line in procedure() {
        if let Some((command, out)) = tokio::task::spawn_blocking({
            let etc = etc.clone();
            move || run_line(&line, &etc)
        })
        .await
        .unwrap()
        {
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(0), "`{command}`: {said}");
            outputs.push((command, String::from_utf8_lossy(&out.stdout).into_owned()));
        }
    }
    sigterm(service.id());
    tokio::task::spawn_blocking(move || wait_exit(&mut service, Duration::from_secs(30))).await.unwrap();

    let text = |word: &str| outputs.iter().find(|(c, _)| c.contains(word)).map(|(_, o)| o.clone()).unwrap();
    assert!(
        text(" status").contains("job:        backfill:") && text(" status").contains("100% finished"),
        "{}",
        text(" status")
    );
    assert!(text(" status").contains("incremental"), "the service's passes beside the job: {}", text(" status"));
    assert!(text(" verify").contains("ok: "), "{}", text(" verify"));
    assert!(text(" check").contains("signed request accepted"), "{}", text(" check"));
    // The backfill up to June, the service beyond it (the data ends an hour after).
    // Shown only when an assertion fails: what the service did.
    eprintln!("{}", std::fs::read_to_string(dir.path().join("service.log")).unwrap_or_default());
    assert_exact(&dir.path().join("var/parquet"), &sim.sim.truth(from, to + 7200, false));
}
