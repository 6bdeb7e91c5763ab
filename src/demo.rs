//! `tasksync simulate` and `tasksync demo`: the simulator on its own, and the simulator
//! plus a real, signed sync into `./demo-data`, checked against the simulator's truth.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::plan::Window;
use crate::simulator::dataset::DatasetSpec;
use crate::simulator::{FaultSpec, PastSpec, SimOptions, Simulator};
use crate::time::{DAY, floor_day};

use crate::sync::run_backfill;

/// Options of `tasksync simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Tasks in the data set.
    #[arg(long, default_value_t = 100_000)]
    pub tasks: u64,
    /// Days the data set spans, ending one hour after the simulator starts.
    #[arg(long, default_value_t = 7)]
    pub days: u64,
    /// Seed: the same seed (and --end) gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Inject transient faults (10 % of responses unless --fault-rate) and unstable ordering.
    #[arg(long)]
    pub faults: bool,
    /// Percentage of responses answered with a fault, with --faults.
    #[arg(long, default_value_t = 10, requires = "faults", value_parser = clap::value_parser!(u64).range(0..=100))]
    pub fault_rate: u64,
    /// Simulated "now" at start (a fixed date makes the data reproducible) [default: the current hour].
    #[arg(long)]
    pub end: Option<String>,
    /// Keep the simulated clock at --end: no task appears or changes status, so that a
    /// benchmark can measure a truly quiet pass.
    #[arg(long)]
    pub freeze: bool,
    /// Require signed requests with this AccessKeyId (the secret comes from --secret-key-env).
    #[arg(long, requires = "secret_key_env")]
    pub access_key_id: Option<String>,
    /// Name of the environment variable holding the SecretAccessKey.
    #[arg(long, requires = "access_key_id")]
    pub secret_key_env: Option<String>,
    /// Answer every request this many milliseconds after it arrives (jittered by a quarter
    /// either way), as a far-away API would.
    #[arg(long, default_value_t = 0)]
    pub latency: u64,
    /// Let through at most this many requests per second; beyond it answer 429 with
    /// Retry-After, as the vendor's gateway does.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Percentage of tasks the API lists only 1 hour to 3 days after their create_time.
    #[arg(long, value_name = "PCT", default_value = "0", value_parser = PastSpec::per_100k)]
    pub late_listing: u32,
    /// Percentage of tasks deleted upstream 10 minutes to 5 days after their create_time
    /// (while a window is paged, too).
    #[arg(long, value_name = "PCT", default_value = "0", value_parser = PastSpec::per_100k)]
    pub deletions: u32,
    /// Percentage of tasks whose create_time the API corrects (within the same UTC day).
    #[arg(long, value_name = "PCT", default_value = "0", value_parser = PastSpec::per_100k)]
    pub corrections: u32,
}

/// Serves the simulator until Ctrl-C; its clock follows the wall clock.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let wall = chrono::Utc::now().timestamp();
    let anchor = match &args.end {
        Some(t) => crate::time::parse_instant(t).map_err(|m| anyhow::anyhow!("--end: {m}"))?,
        None => wall - wall.rem_euclid(3600),
    };
    let keys = match (args.access_key_id, args.secret_key_env) {
        (Some(ak), Some(env)) => Some((
            ak,
            std::env::var(&env).map_err(|_| anyhow::anyhow!("--secret-key-env names {env}, which is not set"))?,
        )),
        _ => None,
    };
    let spec = DatasetSpec {
        seed: args.seed,
        tasks: args.tasks,
        start: anchor - args.days as i64 * DAY,
        end: anchor + 3600,
        hot_hour: None,
        bad_per_million: 0,
    };
    let faults = if args.faults {
        FaultSpec { per_mille: args.fault_rate * 10, ..FaultSpec::none() }
    } else {
        FaultSpec::none()
    };
    let sim = Simulator::new(
        &spec,
        SimOptions {
            keys,
            faults,
            unstable_order: args.faults,
            latency_ms: args.latency,
            rate_limit: args.rate_limit,
            past: PastSpec {
                late_per_100k: args.late_listing,
                deleted_per_100k: args.deletions,
                corrected_per_100k: args.corrections,
            },
            ..SimOptions::default()
        },
        anchor,
    );
    let started = std::time::Instant::now();
    let prerender = sim.clone();
    tokio::task::spawn_blocking(move || prerender.prerender()).await?;
    tracing::info!(
        tasks = args.tasks,
        ms = started.elapsed().as_millis() as u64,
        "Pre-rendered every visible task before listening"
    );
    let (addr, server) = crate::simulator::spawn(sim.clone(), &args.listen).await?;
    tracing::info!(%addr, tasks = args.tasks, days = args.days, seed = args.seed, now = %crate::time::show(anchor), "Simulator listening");
    println!("Simulating list_task on http://{addr}/api/list_task (Ctrl-C to stop)");
    let freeze = args.freeze;
    let ticker = tokio::spawn(async move {
        if freeze {
            return;
        }
        let started = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            sim.set_now(anchor + started.elapsed().as_secs() as i64);
        }
    });
    tokio::select! {
        r = server => { r??; }
        _ = tokio::signal::ctrl_c() => tracing::info!("Simulator stopping"),
    }
    ticker.abort();
    Ok(())
}

/// The demo's fixed "now": the data is the same on every machine and every day.
pub const DEMO_NOW: i64 = 1_634_256_000; // 2021-10-15T00:00:00Z
const DEMO_DAYS: i64 = 3;
const DEMO_AK: &str = "DEMOAK0000000001";
const DEMO_SK: &str = "demo-secret-not-for-production-0";

/// The demo's configuration, parsed from TOML like any other (the secret comes in
/// through the injected environment, never a file).
pub fn demo_config(base_url: &str, dir: &Path) -> Result<Config, crate::config::ConfigError> {
    let text = format!(
        r#"
[api]
base_url = "{base_url}"
page_size = 100
concurrency = 4
requests_per_second = 200
auth = "visionular"
access_key_id = "{DEMO_AK}"
secret_key_env = "TASKSYNC_DEMO_SECRET"
retry_min_delay = "20ms"
retry_max_delay = "1s"
repage_attempts = 10

[storage]
output_dir = "{dir}"
state_db = "{dir}/state.db"
"#,
        dir = dir.display()
    );
    Config::parse(&text, Path::new("<demo config>"), &|name| {
        (name == "TASKSYNC_DEMO_SECRET").then(|| DEMO_SK.to_string())
    })
}

/// Starts the simulator on a free port, backfills three days into `dir`, prints a summary,
/// checks the result against the simulator's truth, and suggests a DuckDB query.
pub async fn demo(dir: &Path) -> anyhow::Result<()> {
    let spec = DatasetSpec {
        seed: 42,
        tasks: 30_000,
        start: DEMO_NOW - DEMO_DAYS * DAY,
        end: DEMO_NOW,
        hot_hour: Some((DEMO_NOW - DAY - 6 * 3600, 12_000)),
        bad_per_million: 200,
    };
    let options = SimOptions {
        keys: Some((DEMO_AK.into(), DEMO_SK.into())),
        faults: FaultSpec::quick(50),
        unstable_order: true,
        ..SimOptions::default()
    };
    let sim = Simulator::new(&spec, options, DEMO_NOW);
    let (addr, server) = crate::simulator::spawn(sim.clone(), "127.0.0.1:0").await?;
    println!(
        "Simulator: {} tasks over {DEMO_DAYS} days (one spike hour), 5 % faults, signed requests, on http://{addr}",
        spec.tasks + 12_000
    );
    let cfg = demo_config(&format!("http://{addr}"), dir)?;
    let range = Window::new(floor_day(DEMO_NOW) - DEMO_DAYS * DAY, DEMO_NOW);
    let totals = run_backfill(cfg, Arc::new(|| DEMO_NOW), range).await?;
    server.abort();
    let findings = crate::verify::verify(dir);
    let stored = findings.rows as usize;
    let truth = sim.truth(range.start, range.end, false).len();
    println!("\nBackfill of {range} into {}:\n  {totals}", dir.display());
    println!(
        "  rows stored: {stored}; simulator truth: {truth}; {}",
        if stored == truth { "exact" } else { "MISMATCH" }
    );
    println!("  rejected records (kept in {}/_rejects/): {}", dir.display(), totals.rejects);
    println!("\n`tasksync verify` on it:\n  {}", findings.to_string().trim_end().replace('\n', "\n  "));
    println!(
        "\nTry it in DuckDB:\n  duckdb -c \"SELECT create_date, status, count(*) AS tasks FROM read_parquet('{}/tasks/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL\"",
        dir.display()
    );
    println!(
        "\nA page of charts (success rate, throughput, failures, turnaround, stuck tasks):\n  pip install -r reports/requirements.txt && python3 reports/run.py {} --html report.html --var as_of={}",
        dir.display(),
        crate::time::show(DEMO_NOW)
    );
    anyhow::ensure!(stored == truth, "the demo's data set holds {stored} rows but the simulator's truth has {truth}");
    anyhow::ensure!(findings.problems.is_empty(), "verify found problems in the demo's data set (listed above)");
    Ok(())
}
