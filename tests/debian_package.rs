//! The Debian package as an operator meets it, under a real systemd: a minimal Debian 12
//! root (`packaging/e2e-root.sh`) booted with `systemd-nspawn -b`, where
//! `packaging/e2e-steps.sh` runs at boot: install, configure, start, stop, a backfill
//! beside the service, an upgrade over itself, remove, purge. The simulator runs here,
//! outside the container, on the loopback the container shares.
//!
//! Needs root, systemd-nspawn and the package: `.ci/run` builds it (`packaging/deb.sh`) and
//! runs this test with `TASKSYNC_DEB` set (`cargo test --test debian_package`; a plain
//! `cargo test` leaves this target out, see Cargo.toml). Without the package the test says
//! "Not run" and passes on a developer's machine, and fails under `CI`, where a package
//! that was never built must not look tested.

#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The observations `e2e-steps.sh` wrote, key -> value.
fn facts(root: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join("e2e/facts")).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A fresh copy of the cached root, with the package, the steps and the unit that runs
/// them at boot (and powers the container off after).
fn prepare_root(work: &Path, deb: &Path, env: &str) -> PathBuf {
    let cached = Path::new(MANIFEST).join("target/e2e/root");
    let made = Command::new("bash").arg(format!("{MANIFEST}/packaging/e2e-root.sh")).arg(&cached).status().unwrap();
    assert!(made.success(), "packaging/e2e-root.sh made the Debian root");
    let root = work.join("root");
    let copied = Command::new("cp").args(["-a", "--reflink=auto"]).arg(&cached).arg(&root).status().unwrap();
    assert!(copied.success());
    let e2e = root.join("e2e");
    std::fs::create_dir_all(&e2e).unwrap();
    std::fs::copy(deb, e2e.join("tasksync.deb")).unwrap();
    std::fs::copy(format!("{MANIFEST}/packaging/e2e-steps.sh"), e2e.join("steps.sh")).unwrap();
    std::fs::write(e2e.join("env"), env).unwrap();
    let unit = "[Unit]\nDescription=tasksync package e2e\nAfter=multi-user.target network-online.target\n\
                [Service]\nType=oneshot\nExecStart=/bin/sh /e2e/steps.sh\nExecStopPost=/bin/systemctl poweroff --no-block\n\
                TimeoutStartSec=15min\n[Install]\nWantedBy=multi-user.target\n";
    std::fs::write(root.join("etc/systemd/system/e2e.service"), unit).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/e2e.service",
        root.join("etc/systemd/system/multi-user.target.wants/e2e.service"),
    )
    .unwrap();
    root
}

/// Boots the root until the steps power it off; the console goes to `log`.
fn boot(root: &Path, log: &Path) {
    let status = Command::new("timeout")
        .args(["900", "systemd-nspawn", "-q", "-b", "--register=no", "--keep-unit", "-D"])
        .arg(root)
        // The CI machines have no system bus and cgroups v1, where systemd 252 boots in the
        // container only on the legacy hierarchy (docs/internals.md, "The machines the tests run on").
        .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::process::Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success(), "the container booted and powered off: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_installs_runs_upgrades_and_is_removed_and_purged_as_debian_policy_says() {
    let Some(deb) = std::env::var_os("TASKSYNC_DEB").map(PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TASKSYNC_DEB is unset under CI: .ci/run builds the package (packaging/deb.sh) and must pass its path"
        );
        eprintln!("Not run: TASKSYNC_DEB is unset (.ci/run builds the package and runs this test with it)");
        return;
    };
    let (sim, start, now) = live_sim(2_000, 3).await;
    let work = tempfile::tempdir_in(Path::new(MANIFEST).join("target")).unwrap();
    let day = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%d").to_string();
    let metrics = format!("127.0.0.1:{}", free_port());
    let env = format!(
        "SIM_URL='{}'\nAK='{AK}'\nSECRET='{SK}'\nMETRICS='{metrics}'\nSTART='{}'\nBACKFILL='{}..{}'\nDEB=/e2e/tasksync.deb\n",
        sim.url,
        day(start),
        day(start),
        day(start + DAY)
    );
    let root = prepare_root(work.path(), &deb, &env);
    let log = work.path().join("console.log");
    let booted = {
        let (root, log) = (root.clone(), log.clone());
        tokio::task::spawn_blocking(move || boot(&root, &log))
    };
    tokio::time::timeout(Duration::from_secs(900), booted).await.expect("the steps finished").unwrap();
    let f = facts(&root);
    let console = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: String =
        console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let get = |k: &str| f.get(k).cloned().unwrap_or_else(|| panic!("no fact {k} in {f:#?}\nconsole:\n{tail}"));
    eprintln!("What the steps saw in the container: {f:#?}");
    assert_eq!(get("done"), "1", "every step ran: {f:#?}");
    check_install(&f, &get);
    check_service(&get);
    check_upgrade_remove_purge(&get);

    // The data set the service and the backfill wrote, read from outside: exact.
    assert_exact(&root.join("var/lib/tasksync/parquet"), &sim.sim.truth(start, now, false));
}

fn check_install(f: &BTreeMap<String, String>, get: &dyn Fn(&str) -> String) {
    assert_eq!(get("install_rc"), "0");
    assert_eq!(get("install_says_not_started"), "1", "the postinst says how to start it");
    assert_eq!(get("ca_certificates"), "install ok installed", "Depends brought the CA certificates");
    assert_eq!(get("user"), "tasksync:/var/lib/tasksync:/usr/sbin/nologin");
    assert_eq!(get("readers"), "tasksync-readers");
    assert_eq!(get("mode:/var/lib/tasksync"), "751 tasksync tasksync");
    assert_eq!(get("mode:/var/lib/tasksync/state"), "700 tasksync tasksync");
    assert_eq!(get("mode:/var/lib/tasksync/parquet"), "2750 tasksync tasksync-readers");
    assert_eq!(get("mode:/etc/tasksync"), "750 root tasksync");
    assert_eq!(get("mode:/etc/tasksync/tasksync.toml"), "640 root tasksync");
    assert_eq!(get("version"), format!("tasksync {}", tasksync::cli::VERSION));
    assert_eq!(get("man"), "/usr/share/man/man1/tasksync.1.gz");
    for (key, value) in f.iter().filter(|(k, _)| k.starts_with("completion:")) {
        assert!(value.parse::<u32>().is_ok_and(|n| n > 0), "{key} = {value}");
    }
    let exposures: Vec<(&String, f64)> = f
        .iter()
        .filter(|(k, _)| k.starts_with("exposure:"))
        .map(|(k, v)| (k, v.parse().unwrap_or_else(|_| panic!("{k} = {v:?}"))))
        .collect();
    assert_eq!(exposures.len(), 3);
    for (key, said) in f.iter().filter(|(k, _)| k.starts_with("verify:")) {
        assert_eq!(said, "", "systemd-analyze {key} found nothing to say of the installed unit");
    }
    assert_eq!(f.keys().filter(|k| k.starts_with("verify:")).count(), 3);
    assert!(exposures.iter().all(|(_, e)| *e <= 2.0), "{exposures:?}");
    assert_eq!(get("enabled_after_install"), "disabled", "installed, not enabled");
    assert_eq!(get("active_after_install"), "inactive", "installed, not started");
}

fn check_service(get: &dyn Fn(&str) -> String) {
    assert_eq!(get("enable_rc"), "0");
    assert_eq!(get("ready"), "0", "READY reached");
    assert!(
        get("first_status").starts_with("started; first pass running") || get("first_status").starts_with("last pass")
    );
    assert_eq!(get("first_pass_ok"), "0", "{}", get("status_text"));
    assert_eq!(get("metrics_build_info"), "1");
    assert_eq!(get("metrics_passes_ok").parse::<f64>().ok().map(|n| n >= 1.0), Some(true));
    assert!(get("partitions").parse::<u32>().unwrap() >= 3, "committed windows: {}", get("partitions"));
    assert_eq!(get("status_cmd"), "1", "tasksync status reads the state as the service's user");
    let stop_ms: u64 = get("stop_ms").parse().unwrap();
    assert!(stop_ms < 40_000, "stopped within TimeoutStopSec: {stop_ms} ms");
    assert_eq!(get("stop_result"), "success");
    assert_eq!(get("backfill_ended"), "0");
    assert_eq!((get("backfill_result"), get("backfill_exit")), ("success".into(), "0".into()));
    assert_eq!(get("service_beside"), "active");
}

fn check_upgrade_remove_purge(get: &dyn Fn(&str) -> String) {
    assert_eq!(get("upgrade_rc"), "0");
    assert_eq!(get("conffile_kept"), "1", "the operator's edit survived the upgrade");
    assert_eq!(get("restarted"), "yes");
    assert_eq!(get("state_inode_kept"), "yes");
    assert_eq!(get("remove_rc"), "0");
    assert_eq!(get("removed_active"), "inactive");
    assert_eq!(get("removed_enabled_link"), "gone", "removal disabled the unit");
    assert_eq!(get("removed_binary"), "gone");
    for p in ["/etc/tasksync/tasksync.toml", "/etc/tasksync/secret_key", "/var/lib/tasksync/state/state.db"] {
        assert_eq!(get(&format!("after_remove:{p}")), "present", "{p} is kept on remove");
    }
    assert_eq!(get("after_remove:/var/lib/tasksync/parquet/tasks"), "present");
    assert_eq!(get("purge_rc"), "0");
    assert_eq!(get("purge_says_kept"), "1");
    assert_eq!(get("after_purge:/etc/tasksync"), "gone");
    assert_eq!(get("after_purge:/var/lib/tasksync/state/state.db"), "present");
    assert_eq!(get("after_purge:/var/lib/tasksync/parquet/tasks"), "present", "purge never deletes the data set");
}
