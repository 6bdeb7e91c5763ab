//! The HTML report (`reports/run.py DATA_DIR --html`) loaded in a real headless Chromium:
//! no console message, every chart drawn. Needs DuckDB and plotly for Python and Debian's
//! chromium (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use tasksync::plan::Window;
use tasksync::simulator::SimOptions;

const RUN_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/reports/run.py");

/// The chart ids the page promises, in page order.
const CHARTS: [&str; 5] =
    ["chart-success-rate", "chart-throughput", "chart-failures", "chart-turnaround", "chart-stages"];

fn report(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("python3").arg(RUN_PY).args(args).output().expect("python3 runs")
}

/// Headless Chromium as the machine's probe starts it (no network chatter), with console
/// messages logged to stderr; `what` is `--dump-dom` or `--screenshot=PATH`.
fn chromium(page: &Path, profile: &Path, what: &str) -> Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,2200",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (.ci/run installs Debian's chromium)")
}

/// The page's console messages, as Chromium logs them.
fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

#[test]
fn the_harness_sees_a_pages_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(&page, "<html><body><script>console.error('boom'); missing();</script></body></html>").unwrap();
    let lines = console_lines(&chromium(&page, &dir.path().join("profile"), "--dump-dom"));
    assert!(lines.iter().any(|l| l.contains("boom")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("missing is not defined")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_every_chart_in_a_real_browser_without_a_console_message() {
    let days = 6;
    let now = D0 + days * DAY - 3 * 3600;
    let world = Scenario::start(spec(51, 9_000, days), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    world.backfill(now, Window::new(D0, D0 + days * DAY)).await.unwrap();
    // Passes ten minutes apart see the last hours' tasks move through their stages.
    for pass in 1..=8 {
        let at = now + pass * 600;
        sim.sim.set_now(at);
        tasksync::sync::run_incremental(with_sync(world.config("")), fixed(at), D0).await.unwrap();
    }
    let out = dir.path().join("out");
    let page = dir.path().join("report.html");

    let made =
        report(&[out.as_os_str(), "--html".as_ref(), page.as_os_str(), "--var".as_ref(), "as_of=2021-10-07".as_ref()]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script src=\"http"), "the page loads nothing from the network");
    for question in [
        "How often does transcoding succeed?",
        "How much gets done?",
        "Why does transcoding fail?",
        "Where does the time go?",
    ] {
        assert!(html.contains(question), "{question} is a chart title");
    }
    assert!(html.contains("tasks created 2021-10-01 00:"), "titles carry the data's time range");

    let dom = chromium(&page, &dir.path().join("profile"), "--dump-dom");
    assert_eq!(console_lines(&dom), Vec::<String>::new(), "the page logs nothing to the console");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for (i, id) in CHARTS.iter().enumerate() {
        let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id} is in the page"));
        let end = CHARTS.get(i + 1).and_then(|next| dom.find(&format!("id=\"{next}\""))).unwrap_or(dom.len());
        let chart = &dom[start..end];
        assert!(chart.contains("js-plotly-plot") && chart.contains("class=\"main-svg\""), "{id} was drawn");
        assert!(chart.contains("<g class=\"trace "), "{id} has data traces");
        assert!(chart.contains("class=\"point\"") || chart.contains("class=\"js-line\""), "{id} drew marks");
    }
    assert!(
        dom.contains("id=\"stuck-table\"") || dom.contains("id=\"stuck-none\""),
        "the stuck tasks section is there"
    );

    // The picture in the README comes from here.
    let shot = screenshot_path();
    let taken = chromium(&page, &dir.path().join("profile2"), &format!("--screenshot={}", shot.display()));
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 100_000, "a page of charts is no blank picture ({size} bytes at {})", shot.display());
}

/// `target/html-report/report.png`.
fn screenshot_path() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("report.png")
}

#[test]
fn a_directory_without_partitions_and_an_unknown_report_get_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let empty = report(&[dir.path().as_os_str(), "--html".as_ref(), dir.path().join("r.html").as_os_str()]);
    let said = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(empty.status.code(), Some(1));
    assert!(said.contains("holds no tasks/create_date=*/*.parquet") && said.contains("storage.output_dir"), "{said}");
    assert!(!dir.path().join("r.html").exists(), "no empty page is written");

    let unknown = report(&[dir.path().as_os_str(), "throughput_weekly".as_ref()]);
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no report named throughput_weekly") && said.contains("throughput_hourly"), "{said}");
}
