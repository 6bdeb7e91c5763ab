//! `task_history/`: every version a pass saw, against the simulator's timelines, with the
//! clock moving; the stage report against the truth; history off.

use std::collections::HashMap;
use std::io::Write;

use crate::common::*;
use tasksync::simulator::SimOptions;
use tasksync::simulator::dataset::{DatasetSpec, Outcome, generate};
use tasksync::sync::{run_backfill, run_incremental};

/// Seconds between passes: the schedule whose resolution the stage report states.
const PERIOD: i64 = 180;

/// The newest seconds a pass does not ask about (`sync.settle`).
const SETTLE: i64 = 1;

fn day_spec() -> DatasetSpec {
    DatasetSpec { seed: 91, tasks: 3_000, start: D0 + 20 * 3600, end: D0 + DAY, hot_hour: None, bad_per_million: 0 }
}

/// Incremental passes every [`PERIOD`] from `from` to `to`, the simulator's clock
/// following; each pass lists the whole day (lookback 2 days). Returns the pass times and,
/// per task, the distinct rows `tasks/` held after each pass, in order.
async fn passes(sim: &Sim, dir: &std::path::Path, from: i64, to: i64) -> (Vec<i64>, HashMap<String, Vec<String>>) {
    let (mut times, mut rows): (Vec<i64>, HashMap<String, Vec<String>>) = (Vec::new(), HashMap::new());
    let mut now = from;
    while now <= to {
        sim.sim.set_now(now);
        let mut cfg = with_sync(config(&sim.url, dir, SK, ""));
        cfg.sync.settle = std::time::Duration::from_secs(SETTLE as u64);
        cfg.sync.lookback = std::time::Duration::from_secs(2 * DAY as u64);
        let totals = run_incremental(cfg, fixed(now), D0).await.unwrap();
        assert!(totals.left_behind.is_empty(), "{totals:?}");
        for (_, r) in stored(&dir.join("out")) {
            let seen = rows.entry(r.task.task_id.to_string()).or_default();
            let text = format!("{r:?}");
            if seen.last() != Some(&text) {
                seen.push(text);
            }
        }
        times.push(now);
        now += PERIOD;
    }
    (times, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_a_pass_sees_is_one_version_a_quiet_pass_adds_none_and_the_stage_report_matches_the_truth() {
    let (from, to) = (D0 + 20 * 3600, D0 + DAY + 1800);
    let world = Scenario::start(day_spec(), SimOptions::default(), from).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let out = dir.path().join("out");
    let (times, rows) = passes(sim, dir.path(), from, to).await;

    // Every row tasks/ held is one version, in order, and nothing else is.
    assert_history_follows(&out);
    let history = history_rows(&out);
    let mut versions: HashMap<String, Vec<String>> = HashMap::new();
    let mut sorted = history.clone();
    sorted.sort_by_key(|(_, v)| v.row.observed_seq);
    for (_, v) in &sorted {
        versions.entry(v.row.task.task_id.to_string()).or_default().push(format!("{:?}", v.row));
    }
    assert_eq!(versions, rows, "each task's versions are the rows tasks/ held, each once");
    let changed = rows.values().filter(|r| r.len() > 1).count();
    assert!(changed > 300, "many tasks were seen in more than one state: {changed}");

    // Each version is the state the simulator says the task was in when it opened.
    let tasks: HashMap<String, _> = generate(&day_spec()).into_iter().map(|t| (t.task_id(), t)).collect();
    for (_, v) in &history {
        let at = v.valid_from.div_euclid(1_000_000);
        assert!(times.contains(&at), "a version opens at a pass: {at}");
        let truth = tasks[v.row.task.task_id.as_str()].status_at(at);
        assert_eq!(v.row.task.status.as_deref(), Some(truth), "task {} at {at}", v.row.task.task_id);
    }

    // A quiet pass at the same moment writes nothing, in either data set.
    let stamps = |d: &str| {
        let mut v: Vec<_> = std::fs::read_dir(out.join(d))
            .unwrap()
            .map(|e| std::fs::metadata(e.unwrap().path().join("part-0.parquet")).unwrap().modified().unwrap())
            .collect();
        v.sort();
        v
    };
    let before = (stamps("tasks"), stamps("task_history"));
    let mut cfg = with_sync(world.config(""));
    cfg.sync.settle = std::time::Duration::from_secs(SETTLE as u64);
    cfg.sync.lookback = std::time::Duration::from_secs(2 * DAY as u64);
    let quiet = run_incremental(cfg, fixed(to), D0).await.unwrap();
    assert_eq!((quiet.counts.versions, quiet.counts.files_written), (0, 0), "{quiet:?}");
    assert_eq!((stamps("tasks"), stamps("task_history")), before);
    let f = tasksync::verify::verify(&out);
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    assert_eq!(f.history.as_ref().map(|h| h.versions), Some(history.len() as u64));

    // The stage report against the timelines and the pass times alone.
    let timelines = dir.path().join("timelines.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&timelines).unwrap());
    let truth: HashMap<String, tasksync::row::TaskRow> =
        sim.sim.truth(D0, to, false).into_iter().map(|t| (t.task_id.to_string(), t)).collect();
    for t in tasks.values().filter(|t| truth.contains_key(&t.task_id())) {
        let (end, stuck_in) = match t.outcome {
            Outcome::Success => ("success", None),
            Outcome::Fail(_) => ("fail", None),
            Outcome::Stuck(k) => ("stuck", Some(k)),
        };
        let template = truth[&t.task_id()].template_name.clone().map(|n| n.to_string());
        let line = serde_json::json!({
            "task_id": t.task_id(), "create_time": t.create, "phases": t.phases, "end": end, "stuck_in": stuck_in,
            "template_name": template.unwrap_or_else(|| "(none)".into()),
        });
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    let passes: Vec<String> = times.iter().map(i64::to_string).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/reports/check_stage_durations.py");
    let checked = std::process::Command::new("python3")
        .args([script.as_ref(), out.as_os_str(), timelines.as_os_str()])
        .arg(passes.join(","))
        .arg(SETTLE.to_string())
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "{said}");
    assert!(said.contains("stage_durations: ") && said.contains("groups match the truth"), "{said}");
    for stage in ["pending", "downloading", "running", "uploading"] {
        assert!(said.contains(&format!("'{stage}'")), "{stage} was measured: {said}");
    }
    eprintln!("{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_history_off_nothing_is_written_under_task_history_and_verify_says_so() {
    let now = D0 + 2 * DAY + 3600;
    let world = Scenario::start(spec(92, 2_000, 2), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let mut cfg = world.config("");
    cfg.storage.history = false;
    let totals = run_backfill(cfg, fixed(now), tasksync::plan::Window::new(D0, D0 + 2 * DAY)).await.unwrap();
    let out = dir.path().join("out");
    assert_eq!(totals.counts.versions, 0);
    assert!(!out.join("task_history").exists(), "no task_history/ at all");
    assert_exact(&out, &sim.sim.truth(D0, D0 + 2 * DAY, false));
    let f = tasksync::verify::verify(&out);
    assert!(f.problems.is_empty() && f.history.is_none(), "{f}");
    assert!(f.to_string().contains("history: none (no task_history/; storage.history off)"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_history_on_seeds_each_day_from_its_tasks_file_the_next_time_it_is_written() {
    let now = D0 + 2 * DAY + 3600;
    let world = Scenario::start(spec(93, 2_000, 2), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = tasksync::plan::Window::new(D0, D0 + 2 * DAY);
    let mut off = world.config("");
    off.storage.history = false;
    run_backfill(off, fixed(now), range).await.unwrap();
    let out = dir.path().join("out");
    // A new job over the same days: nothing changed, yet each day's history is seeded.
    let again = tasksync::plan::Window::new(D0 - DAY, D0 + 2 * DAY);
    let totals = world.backfill(now, again).await.unwrap();
    assert_eq!(totals.counts.files_written, 0, "{totals:?}");
    assert_eq!(totals.counts.versions as usize, stored(&out).len(), "one version per task");
    assert_exact(&out, &sim.sim.truth(D0, D0 + 2 * DAY, false));
}
