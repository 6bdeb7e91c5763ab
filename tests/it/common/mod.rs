//! Shared helpers of the integration tests: a simulator on 127.0.0.1:0, a config pointing
//! at it, and readers of what tasksync wrote.
#![allow(dead_code)]

mod process;
mod scenario;
#[allow(unused_imports)]
pub use process::*;
pub use scenario::Scenario;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tasksync::config::Config;
use tasksync::row::{StoredRow, TaskRow};
use tasksync::simulator::dataset::DatasetSpec;
use tasksync::simulator::{SimOptions, Simulator};

pub const D0: i64 = 1_633_046_400; // 2021-10-01T00:00:00Z
pub const DAY: i64 = 86_400;
pub const AK: &str = "CWIs00000000i3x0";
pub const SK: &str = "TestSecretKey0123456789abcdefXYZ";

/// A running simulator and its URL.
pub struct Sim {
    pub sim: Arc<Simulator>,
    pub url: String,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub async fn start_sim(spec: DatasetSpec, options: SimOptions, now: i64) -> Sim {
    let sim = Simulator::new(&spec, options, now);
    let (addr, handle) = tasksync::simulator::spawn(sim.clone(), "127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    Sim { sim, url: format!("http://{addr}"), handle }
}

pub fn spec(seed: u64, tasks: u64, days: i64) -> DatasetSpec {
    DatasetSpec { seed, tasks, start: D0, end: D0 + days * DAY, hot_hour: None, bad_per_million: 0 }
}

/// Config text for `url` writing under `dir` (`dir/out`, `dir/state/state.db`); lines in
/// `extra_api` override or add to `[api]`; `sections` (e.g. a `[sync]` table) are appended.
pub fn config_text(url: &str, dir: &Path, extra_api: &str, sections: &str) -> String {
    let text = format!(
        r#"
[api]
base_url = "{url}"
page_size = 100
timeout = "5s"
concurrency = 4
requests_per_second = 100000
auth = "visionular"
access_key_id = "{AK}"
secret_key_env = "TEST_SK"
retry_min_delay = "1ms"
retry_max_delay = "20ms"
max_retries = 12
repage_attempts = 10
{extra_api}
{sections}

[storage]
output_dir = "{out}"
state_db = "{state}"
"#,
        out = dir.join("out").display(),
        state = dir.join("state/state.db").display(),
    );
    // Keys in `extra_api` override the defaults above.
    let overridden: Vec<&str> =
        extra_api.lines().filter_map(|l| l.split('=').next()).map(str::trim).filter(|k| !k.is_empty()).collect();
    text.lines()
        .filter(|l| !overridden.contains(&l.split('=').next().unwrap_or("").trim()) || extra_api.contains(l.trim()))
        .map(|l| format!("{l}\n"))
        .collect()
}

const SYNC: &str = "\n[sync]\nstart = \"2021-10-01\"\nsettle = \"2m\"\nlookback = \"1h\"\nreopen_max_age = \"3d\"\n";

/// `cfg` with a `[sync]` section: start 2021-10-01, settle 2m, lookback 1h, reopen 3d.
pub fn with_sync(mut cfg: tasksync::config::Config) -> tasksync::config::Config {
    let parsed = tasksync::config::Config::parse(
        &format!("[api]\nbase_url = \"http://x\"\nauth = \"none\"\n{SYNC}"),
        Path::new("t"),
        &|_| None,
    )
    .unwrap();
    cfg.sync = parsed.sync;
    cfg
}

/// A parsed config (see [`config_text`]); the secret comes from an injected environment.
pub fn config(url: &str, dir: &Path, secret: &str, extra_api: &str) -> Config {
    let secret = secret.to_string();
    Config::parse(&config_text(url, dir, extra_api, ""), Path::new("test.toml"), &move |_| Some(secret.clone()))
        .expect("the test config is valid")
}

/// The same config as a file, `dir/tasksync.toml`, for the binary (which reads `TEST_SK`).
pub fn config_file(dir: &Path, url: &str, extra_api: &str, sections: &str) -> PathBuf {
    let path = dir.join("tasksync.toml");
    std::fs::write(&path, config_text(url, dir, extra_api, sections)).unwrap();
    path
}

/// The state database of a config written by [`config_text`].
pub fn state_db(dir: &Path) -> PathBuf {
    dir.join("state/state.db")
}

/// Every stored row under `{out}/tasks`, with the partition each came from.
pub fn stored(out: &Path) -> Vec<(String, StoredRow)> {
    let mut rows = Vec::new();
    let tasks = out.join("tasks");
    let Ok(dirs) = std::fs::read_dir(&tasks) else { return rows };
    for dir in dirs {
        let dir = dir.unwrap().path();
        let date = dir.file_name().unwrap().to_string_lossy().trim_start_matches("create_date=").to_string();
        let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "one file per partition in {}", dir.display());
        for row in tasksync::sink::format::reader::read_file(&files[0]).expect("a readable partition file") {
            rows.push((date.clone(), row));
        }
    }
    rows
}

/// Asserts the dataset under `out` is exactly `truth`: one row per task_id, every field
/// equal, every row in the partition of its UTC create date.
pub fn assert_exact(out: &Path, truth: &[TaskRow]) {
    let rows = stored(out);
    let mut by_id: HashMap<&str, &StoredRow> = HashMap::new();
    for (date, row) in &rows {
        assert_in_its_partition(date, row);
        assert!(by_id.insert(&row.task.task_id, row).is_none(), "task {} is stored twice", row.task.task_id);
        assert!(row.first_seen_at <= row.changed_at);
    }
    assert_eq!(rows.len(), truth.len(), "stored rows vs truth");
    for t in truth {
        let got = by_id.get(t.task_id.as_str()).unwrap_or_else(|| panic!("task {} is missing", t.task_id));
        assert_eq!(&got.task, t, "task {} differs from the truth", t.task_id);
    }
    let staging = out.join("_staging");
    assert_eq!(std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0), 0, "nothing left in _staging");
    assert_history_follows(out);
}

/// Every version under `{out}/task_history`, with the day each came from.
pub fn history_rows(out: &Path) -> Vec<(String, tasksync::transform::versions::HistoryRow)> {
    let mut rows = Vec::new();
    let Ok(dirs) = std::fs::read_dir(out.join("task_history")) else { return rows };
    for dir in dirs {
        let dir = dir.unwrap().path();
        let date = dir.file_name().unwrap().to_string_lossy().trim_start_matches("create_date=").to_string();
        let file = dir.join("part-0.parquet");
        for row in tasksync::sink::format::history_file::read_history(&file).expect("a readable history file") {
            rows.push((date.clone(), row));
        }
    }
    rows
}

/// Asserts `task_history/` follows `tasks/` under `out` (when there is one): each task's
/// versions, in observation order, back to back and one per observation, the last one
/// current and equal to its row in `tasks`; no current version of a task not in `tasks`;
/// every task of a day that has a history file has a version there.
pub fn assert_history_follows(out: &Path) {
    if !out.join("task_history").is_dir() {
        return;
    }
    let tasks: HashMap<String, StoredRow> =
        stored(out).into_iter().map(|(d, r)| (format!("{d}/{}", r.task.task_id), r)).collect();
    let mut by_task: HashMap<String, Vec<tasksync::transform::versions::HistoryRow>> = HashMap::new();
    for (date, v) in history_rows(out) {
        by_task.entry(format!("{date}/{}", v.row.task.task_id)).or_default().push(v);
    }
    for (task, versions) in &mut by_task {
        versions.sort_by_key(|v| v.row.observed_seq);
        for pair in versions.windows(2) {
            assert!(pair[0].row.observed_seq < pair[1].row.observed_seq, "{task}: one version per observation");
            assert_eq!(pair[0].valid_to, Some(pair[1].valid_from), "{task}: versions back to back: {versions:?}");
            assert_ne!(pair[0].row, pair[1].row, "{task}: a version that changed nothing");
        }
        let last = versions.last().unwrap();
        assert_eq!(last.valid_to, None, "{task}: the last version is current");
        assert_eq!(Some(&last.row), tasks.get(task), "{task}: the current version equals the row in tasks/");
    }
    // A day without a history file is one not written since history was turned on (verify
    // notes it); a day with one holds every task of the day.
    for task in tasks.keys() {
        let day = task.split('/').next().unwrap();
        if out.join(format!("task_history/create_date={day}/part-0.parquet")).is_file() {
            assert!(by_task.contains_key(task), "{task} has no version in task_history/");
        }
    }
}

/// Asserts `row` was read from the partition of its UTC create date.
fn assert_in_its_partition(date: &str, row: &StoredRow) {
    assert_eq!(
        date,
        tasksync::time::utc_date(row.task.create_time),
        "task {} is in the wrong partition",
        row.task.task_id
    );
}

/// Modification times of every partition file, to prove a pass rewrote nothing.
pub fn file_stamps(out: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v: Vec<_> = walk(&out.join("tasks"))
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, m)
        })
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A clock fixed at `now`.
pub fn fixed(now: i64) -> tasksync::time::Clock {
    Arc::new(move || now)
}

/// Writes `rows` as partition `date` under `out` through the store's own stage and replace,
/// as an earlier run would have left it.
pub fn write_partition(out: &Path, date: &str, rows: &[StoredRow]) {
    let sink = tasksync::sink::store::Store::open(out).unwrap();
    let staged = sink.stage(date);
    let mut writer = tasksync::sink::format::writer::FileWriter::create(&staged.file).unwrap();
    writer.write(rows).unwrap();
    writer.finish().unwrap();
    sink.rename_into_place(date, tasksync::sink::store::Target::Tasks, staged).unwrap();
}

/// A finished task with only its identity, times and status set.
pub fn example_task(task_id: &str, create_time: i64) -> TaskRow {
    TaskRow {
        status: Some("success".into()),
        err_code: Some(0),
        finish_time: Some(create_time + 60),
        ..TaskRow::blank(task_id.into(), create_time)
    }
}

/// A data set ending a minute before the wall clock, so the daemon's real "now" covers it;
/// signed requests. Returns the simulator, the first day's start and "now".
pub async fn live_sim(tasks: u64, days: i64) -> (Sim, i64, i64) {
    live_sim_with(40, tasks, days, SimOptions::default()).await
}

/// [`live_sim`] with another seed and behaviour (faults, unstable paging).
pub async fn live_sim_with(seed: u64, tasks: u64, days: i64, options: SimOptions) -> (Sim, i64, i64) {
    let now = chrono::Utc::now().timestamp();
    let start = now - now.rem_euclid(DAY) - days * DAY;
    let spec = tasksync::simulator::dataset::DatasetSpec {
        seed,
        tasks,
        start,
        end: now - 60,
        hot_hour: None,
        bad_per_million: 0,
    };
    let options = SimOptions { keys: Some((AK.into(), SK.into())), ..options };
    (start_sim(spec, options, now).await, start, now)
}

/// Asserts the dataset under `out` has converged to `truth` (what the API lists now):
/// its rows not marked deleted are exactly `truth`, one per task_id across the data set,
/// each in its partition; rows marked deleted are tasks the API no longer lists. Returns
/// how many rows are marked deleted.
pub fn assert_converged(out: &Path, truth: &[TaskRow]) -> usize {
    let rows = stored(out);
    let mut seen = std::collections::HashSet::new();
    for (date, row) in &rows {
        assert_in_its_partition(date, row);
        if !seen.insert(row.task.task_id.clone()) {
            let copies: Vec<_> = rows
                .iter()
                .filter(|(_, r)| r.task.task_id == row.task.task_id)
                .map(|(d, r)| (d, r.task.create_time, r.deleted_at, r.observed_seq))
                .collect();
            panic!("task {} is stored twice: {copies:?}", row.task.task_id);
        }
    }
    let live: Vec<TaskRow> = rows.iter().filter(|(_, r)| r.deleted_at.is_none()).map(|(_, r)| r.task.clone()).collect();
    let by_id: HashMap<&str, &TaskRow> = live.iter().map(|t| (t.task_id.as_str(), t)).collect();
    let truth_ids: std::collections::HashSet<&str> = truth.iter().map(|t| t.task_id.as_str()).collect();
    for t in truth {
        let got = by_id.get(t.task_id.as_str()).unwrap_or_else(|| panic!("live task {} is missing", t.task_id));
        assert_eq!(*got, t, "task {} differs from the truth", t.task_id);
    }
    assert_eq!(live.len(), truth.len(), "rows not marked deleted vs the truth");
    let deleted: Vec<&StoredRow> = rows.iter().map(|(_, r)| r).filter(|r| r.deleted_at.is_some()).collect();
    for r in &deleted {
        assert!(!truth_ids.contains(r.task.task_id.as_str()), "task {} is listed but marked deleted", r.task.task_id);
    }
    assert_history_follows(out);
    deleted.len()
}

/// A file system mounted on a temporary directory for one test (root only), unmounted
/// when dropped: a tiny tmpfs to fill up, or btrfs in a loop file.
pub struct Mounted {
    /// Where it is mounted.
    point: std::path::PathBuf,
    /// The loop file behind it, removed after the unmount.
    image: Option<std::path::PathBuf>,
}

impl Mounted {
    /// A tmpfs of `kib` KiB on `dir`.
    pub fn tmpfs(dir: &Path, kib: u32) -> Option<Mounted> {
        let size = format!("size={kib}k");
        let ok = run_ok(Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir));
        Mounted::made(ok, "a tmpfs", dir, None)
    }

    /// A fresh btrfs (a 128 MiB loop file beside `dir`) on `dir`.
    pub fn btrfs(dir: &Path) -> Option<Mounted> {
        let image = dir.with_extension("btrfs.img");
        let ok = run_ok(Command::new("truncate").args(["-s", "128M"]).arg(&image))
            && run_ok(Command::new("mkfs.btrfs").arg("-q").arg(&image))
            && run_ok(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(dir));
        Mounted::made(ok, "a btrfs loop file", dir, Some(image))
    }

    /// CI runs as root with the tools installed and must run these tests; elsewhere the
    /// test says it did not run.
    fn made(ok: bool, what: &str, dir: &Path, image: Option<std::path::PathBuf>) -> Option<Mounted> {
        assert!(ok || std::env::var_os("CI").is_none(), "mounting {what} failed; CI runs as root with btrfs-progs");
        if !ok {
            eprintln!("Not run: mounting {what} needs root (and mkfs.btrfs)");
            if let Some(image) = &image {
                let _ = std::fs::remove_file(image);
            }
        }
        ok.then(|| Mounted { point: dir.to_path_buf(), image })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.point).status();
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// Whether `cmd` ran and succeeded, its output discarded.
fn run_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}
