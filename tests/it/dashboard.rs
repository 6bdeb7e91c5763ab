//! contrib/grafana/tasksync.json and contrib/prometheus/alerts.yml against a real
//! Prometheus server (Debian's `prometheus`, which `.ci/run` installs for promtool): it
//! scrapes a running `tasksync run` for a few passes against a faulty simulator, then
//! every panel's expression must be valid and return data, and so must every series an
//! alert rule reads. A panel that queries a metric under a wrong name fails here.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use tasksync::simulator::{FaultSpec, SimOptions};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A Prometheus server on 127.0.0.1, killed when dropped.
struct Prometheus {
    /// The server process.
    child: Child,
    /// Its HTTP API.
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus scraping `target` every second as job "tasksync".
fn prometheus(dir: &Path, target: &str) -> Prometheus {
    let config = dir.join("prometheus.yml");
    let text = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: tasksync\n    static_configs: [{{ targets: [\"{target}\"] }}]\n"
    );
    std::fs::write(&config, text).unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("Debian's prometheus server is installed (.ci/run installs the prometheus package)");
    Prometheus { child, url: format!("http://127.0.0.1:{port}") }
}

/// The result of an instant query: `Err` with Prometheus's error when it is invalid.
async fn query(prom: &Prometheus, expr: &str) -> Result<Vec<serde_json::Value>, String> {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/query", prom.url))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(body["error"].as_str().unwrap_or("no error given").to_string());
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// A panel expression as Grafana would send it for job "tasksync", every instance.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$job", "tasksync").replace("$instance", ".+").replace("$__rate_interval", "20s")
}

/// Every panel's (title, expressions) of the dashboard.
fn panels() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(format!("{ROOT}/contrib/grafana/tasksync.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dash["schemaVersion"].as_i64().unwrap() >= 39, "a current Grafana's schema");
    let panels = dash["panels"].as_array().unwrap();
    let mut ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "every panel has an id of its own");
    panels
        .iter()
        .filter(|p| p["type"] != "row")
        .map(|p| {
            let exprs = p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string());
            (p["title"].as_str().unwrap().to_string(), exprs.collect())
        })
        .collect()
}

/// Every alert rule's (name, expression) of contrib/prometheus/alerts.yml.
fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{ROOT}/contrib/prometheus/alerts.yml")).unwrap();
    let mut rules = Vec::new();
    let mut name = None;
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- alert:") {
            name = Some(n.trim().to_string());
        } else if let (Some(expr), Some(n)) = (line.strip_prefix("expr:"), name.take()) {
            rules.push((n, expr.trim().to_string()));
        }
    }
    rules
}

/// The series selectors (`name{labels}`) an expression reads, without offsets.
fn selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in expr.match_indices('{') {
        let name: String =
            expr[..at].chars().rev().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let end = at + expr[at..].find('}').unwrap() + 1;
        out.push(format!("{}{}", name.chars().rev().collect::<String>(), &expr[at..end]));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_and_alert_series_returns_data_from_a_real_prometheus() {
    let faults = FaultSpec { per_mille: 50, ..FaultSpec::none() };
    let (sim, start, now) = live_sim_with(61, 3_000, 3, SimOptions { faults, ..SimOptions::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let sections = format!(
        "[sync]\nstart = \"{start}\"\nsettle = \"1s\"\nschedule = \"*/2 * * * * *\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n"
    );
    let path = config_file(dir.path(), &sim.url, "requests_per_second = 10000", &sections);
    // An unfinished backfill, so that its progress has a series.
    let job_range = tasksync::plan::Window::new(start - 10 * DAY, start - 6 * DAY);
    let state = tasksync::state::State::open(&state_db(dir.path())).unwrap();
    state.ensure_job(&tasksync::sync::backfill_job_id(job_range), "backfill", job_range, now).unwrap();
    drop(state);
    let daemon =
        tasksync::daemon::Daemon::open(load_config(&path), tasksync::time::system_clock(), start).await.unwrap();
    let addr = daemon.metrics_addr().expect("metrics.listen is set");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    let prom = prometheus(dir.path(), &addr.to_string());

    // Scraped long enough for a rate over 20 s, with several passes done.
    let d = dir.path().to_path_buf();
    let passed = tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(90), || finished_passes(&d) >= 3));
    assert!(passed.await.unwrap(), "three passes within 90 s");
    let mut scrapes = 0.0;
    for _ in 0..60 {
        let got = query(&prom, "count_over_time(tasksync_build_info{job=\"tasksync\"}[30s])").await;
        scrapes = got.ok().and_then(|r| r.first()?["value"][1].as_str()?.parse().ok()).unwrap_or(0.0);
        if scrapes >= 12.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(scrapes >= 12.0, "Prometheus scraped the daemon ({scrapes} scrapes):\n{}", log());

    let mut empty = Vec::new();
    let panels = panels();
    assert!(panels.len() >= 20, "the dashboard has its panels ({})", panels.len());
    for (title, exprs) in &panels {
        for expr in exprs {
            match query(&prom, &as_grafana_sends(expr)).await {
                Err(e) => empty.push(format!("panel \"{title}\": {expr} is invalid: {e}")),
                Ok(r) if r.is_empty() => empty.push(format!("panel \"{title}\": {expr} returned no data")),
                Ok(_) => {}
            }
        }
    }
    let rules = alert_rules();
    assert!(rules.len() >= 8, "the alert rules were read ({})", rules.len());
    for (name, expr) in &rules {
        if let Err(e) = query(&prom, expr).await {
            empty.push(format!("alert {name}: {expr} is invalid: {e}"));
        }
        for selector in selectors(expr) {
            if query(&prom, &selector).await.is_ok_and(|r| r.is_empty()) {
                empty.push(format!("alert {name}: {selector} returned no data"));
            }
        }
    }
    stop.send(()).unwrap();
    running.await.unwrap().expect("the daemon stops cleanly");
    assert!(empty.is_empty(), "{}\n(scraped {scrapes} times)", empty.join("\n"));
}
