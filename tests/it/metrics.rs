//! Prometheus metrics from a running `tasksync run`: what a real scrape says, checked
//! against the data set and by Prometheus's own `promtool`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// A daemon config with one pass at start (the schedule fires hourly) and metrics on `port`.
fn metrics_config(dir: &std::path::Path, url: &str, start: i64, port: u16) -> std::path::PathBuf {
    let sections = format!(
        "[sync]\nstart = \"{start}\"\nsettle = \"1s\"\nschedule = \"0 0 * * * *\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    config_file(dir, url, "requests_per_second = 10000", &sections)
}

/// The value of the sample line that starts with `series ` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(port: u16, accept: Option<&str>) -> (String, String) {
    let mut req = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let resp = req.send().await.expect("the metrics endpoint answers");
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    (ctype, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_serves_metrics_on_port_0_that_match_the_data_and_pass_promtool() {
    let (sim, start, now) = live_sim(3_000, 3).await;
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the daemon binds any free port and tells which (no bind-and-release race).
    let cfg = load_config(&metrics_config(dir.path(), &sim.url, start, 0));
    let daemon = tasksync::daemon::Daemon::open(cfg, tasksync::time::system_clock(), start).await.unwrap();
    let addr = daemon.metrics_addr().expect("metrics.listen is set");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let port = addr.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    let d = dir.path().to_path_buf();
    let passed = tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(60), || finished_passes(&d) >= 1));
    assert!(passed.await.unwrap(), "the first pass finishes within 60 s");

    // A backfill another process started (and has not finished) shows in this scrape.
    let job_range = tasksync::plan::Window::new(start - 10 * DAY, start - 6 * DAY);
    let job = tasksync::sync::backfill_job_id(job_range);
    let state = tasksync::state::State::open(&state_db(dir.path())).unwrap();
    state.ensure_job(&job, "backfill", job_range, now).unwrap();
    drop(state);
    let conn = rusqlite::Connection::open(state_db(dir.path())).unwrap();
    conn.execute(
        "INSERT INTO job_intervals VALUES (?1, ?2, ?3)",
        rusqlite::params![job, job_range.start, job_range.start + DAY],
    )
    .unwrap();

    let (ctype, text) = scrape(port, None).await;
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let rows = stored(&dir.path().join("out")).len() as f64;
    assert_eq!(sample(&text, "tasksync_tasks_total{change=\"new\"}"), Some(rows), "every stored row was new once");
    assert_eq!(sample(&text, "tasksync_passes_total{result=\"ok\"}"), Some(1.0));
    assert_eq!(sample(&text, "tasksync_files_written_total"), Some(4.0), "three days and today: four partitions");
    let versions = history_rows(&dir.path().join("out")).len() as f64;
    assert_eq!(sample(&text, "tasksync_history_versions_total"), Some(versions), "each version opened once");
    assert_eq!(versions, rows, "one pass: one version per task");
    let ok = sample(&text, "tasksync_requests_total{outcome=\"ok\"}").unwrap();
    assert_eq!(sample(&text, "tasksync_request_duration_seconds_count"), Some(ok), "no failed request: each was ok");
    assert!(sample(&text, "tasksync_cursor_lag_seconds").unwrap() < 300.0, "{text}");
    assert!(sample(&text, "tasksync_last_success_timestamp_seconds").unwrap() >= now as f64 - 5.0);
    assert_eq!(sample(&text, &format!("tasksync_backfill_progress_ratio{{job=\"{job}\"}}")), Some(0.25));
    assert_eq!(sample(&text, "tasksync_windows_left_behind"), Some(0.0));

    // Prometheus's own linter accepts a real scrape.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (.ci/run installs Debian's prometheus package)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&lint.stdout), String::from_utf8_lossy(&lint.stderr));
    assert!(lint.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");

    // Prometheus asks for OpenMetrics and gets it.
    let (ctype, om) = scrape(port, Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")).await;
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE tasksync_requests counter"), "{om}");

    stop.send(()).unwrap();
    running.await.unwrap().expect("the daemon stops cleanly");
    // The server task is aborted as the daemon ends; its listener closes at its next poll.
    let released = wait_until(Duration::from_secs(5), || std::net::TcpListener::bind(addr).is_ok());
    assert!(released, "the metrics port is released once the daemon ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_in_use_stops_run_at_start_with_one_line_naming_the_key() {
    let (sim, start, _) = live_sim(100, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = metrics_config(dir.path(), &sim.url, start, port);
    let out = tokio::task::spawn_blocking(move || bin().arg("--config").arg(&cfg).arg("run").output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("tasksync: error: metrics.listen 127.0.0.1:") && last.contains(&port.to_string()),
        "{err}"
    );
    assert!(last.contains("in use"), "the cause is named: {last}");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_sync_leaves_the_configured_port_to_the_service_and_serves_only_at_its_own_flag() {
    // Slow answers keep the backfill running long enough to be scraped.
    let options = tasksync::simulator::SimOptions { latency_ms: 300, ..Default::default() };
    let (sim, start, now) = live_sim_with(40, 500, 2, options).await;
    let dir = tempfile::tempdir().unwrap();
    // Both held while the other is picked, so that they differ.
    let (a, b) =
        (std::net::TcpListener::bind("127.0.0.1:0").unwrap(), std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let (configured, own) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
    drop((a, b));
    let cfg = metrics_config(dir.path(), &sim.url, start, configured);
    let args = ["sync", "--from", &start.to_string(), "--to", &now.to_string(), "--metrics-listen"].map(String::from);
    let mut sync = bin().arg("--config").arg(&cfg).args(args).arg(format!("127.0.0.1:{own}")).spawn().unwrap();
    let served = tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", own)).is_ok())
    });
    assert!(served.await.unwrap(), "the backfill serves /metrics at --metrics-listen");
    let (_, text) = scrape(own, None).await;
    assert!(text.contains("tasksync_requests_total"), "{text}");
    // The configured address stays free for the service: binding it here succeeds.
    let service = std::net::TcpListener::bind(("127.0.0.1", configured));
    assert!(service.is_ok(), "the one-off sync left metrics.listen alone: {service:?}");
    let code = tokio::task::spawn_blocking(move || wait_exit(&mut sync, Duration::from_secs(60)).0).await.unwrap();
    assert_eq!(code, Some(0));
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now, false));

    // An explicit address in use is an error that names the flag.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let args = ["sync", "--from", &start.to_string(), "--to", &now.to_string(), "--metrics-listen"].map(String::from);
    let out = bin().arg("--config").arg(&cfg).args(args).arg(format!("127.0.0.1:{port}")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("--metrics-listen 127.0.0.1:{port} cannot be served")), "{err}");
}
