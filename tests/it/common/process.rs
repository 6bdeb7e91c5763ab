//! Helpers of the tests that run the binary as a process: the binary, configs for it,
//! waiting for its passes, signals and exits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{SK, config_file, state_db};
use tasksync::config::Config;

/// The tasksync binary, with the test secret in its environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tasksync"));
    c.env_remove("TASKSYNC_CONFIG").env("TEST_SK", SK);
    c
}

/// The last line the process wrote to stderr: where tasksync puts its one-line error.
pub fn last_stderr_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string()
}

/// A port free right now on 127.0.0.1, for a config handed to another process. (In the
/// process itself, bind port 0 and read the address back instead.)
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Reads a config file as the binary would, the secret being the test's.
pub fn load_config(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).unwrap();
    Config::parse(&text, path, &|_| Some(SK.to_string())).expect("the test config is valid")
}

/// A config file for the daemon tests: signed, `rps` requests per second, a `[sync]` table.
pub fn daemon_config(dir: &Path, url: &str, start: i64, rps: u32, schedule: &str) -> std::path::PathBuf {
    let sync = format!("[sync]\nstart = \"{start}\"\nsettle = \"1s\"\nlookback = \"10m\"\nschedule = \"{schedule}\"");
    config_file(dir, url, &format!("requests_per_second = {rps}\nretry_max_delay = \"10ms\""), &sync)
}

pub fn finished_passes(dir: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(state_db(dir)) else { return 0 };
    conn.query_row("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL", [], |r| r.get(0)).unwrap_or(0)
}

/// When the backfill job of `range` finished, `None` while unfinished (or unknown).
pub fn job_finished_at(state: &tasksync::state::State, range: tasksync::plan::Window) -> Option<i64> {
    let job = tasksync::sync::backfill_job_id(range);
    state.jobs().unwrap().into_iter().find(|j| j.job_id == job).and_then(|j| j.finished_at)
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn sigterm(pid: u32) {
    assert!(Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success());
}

/// Waits for the child to exit within `limit`; returns its exit code and how long it took.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> (Option<i32>, Duration) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the daemon did not exit within {limit:?}");
}
