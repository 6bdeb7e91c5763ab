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
    let sim = simulator_of(&args, anchor)?;
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

/// The simulator `simulate`'s flags describe, its clock at `anchor`.
fn simulator_of(args: &SimulateArgs, anchor: i64) -> anyhow::Result<Arc<Simulator>> {
    let keys = match (args.access_key_id.clone(), args.secret_key_env.clone()) {
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
    Ok(Simulator::new(
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
                since: 0,
            },
            ..SimOptions::default()
        },
        anchor,
    ))
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

/// Tasks per 100,000 that the demo's source deletes, and that it lists late, after the
/// backfill: what the reconciliation finds.
const DEMO_PAST_PER_100K: u32 = 300;

/// The service's view of the demo: an incremental pass right after the backfill (the
/// cursor), then, a day later on the simulator's clock, a pass whose reconciliation finds
/// what the source changed in the past, then the rest of one rotation (what equal counts
/// hide: a deletion and a late listing in the same range). Returns the first
/// reconciling pass's summary and what the rest of the rotation found; `None` when an
/// earlier demo in the same place did all this already.
async fn converge(
    sim: &Simulator,
    mut cfg: Config,
    range: Window,
) -> anyhow::Result<Option<(crate::sync::summary::Totals, crate::sync::summary::Totals)>> {
    cfg.sync.start = Some(range.start);
    let later = Arc::new(|| DEMO_NOW + DAY);
    if crate::state::State::open(&cfg.storage.state_db)?.last_reconciliation()?.is_some() {
        sim.set_now(DEMO_NOW + DAY);
        return Ok(None);
    }
    crate::sync::run_incremental(cfg.clone(), Arc::new(|| DEMO_NOW), range.start).await?;
    sim.set_now(DEMO_NOW + DAY);
    let first = crate::sync::run_incremental(cfg.clone(), later.clone(), range.start).await?;
    // The service would run these over the next two days; here they run back to back.
    cfg.sync.reconcile_every = std::time::Duration::ZERO;
    let mut rest = first.clone();
    (rest.counts.new, rest.counts.changed, rest.counts.deleted, rest.requests) = (0, 0, 0, 0);
    for _ in 1..crate::sync::reconcile::ROTATION {
        let t = crate::sync::run_incremental(cfg.clone(), later.clone(), range.start).await?;
        (rest.counts.new, rest.counts.changed, rest.counts.deleted, rest.requests) = (
            rest.counts.new + t.counts.new,
            rest.counts.changed + t.counts.changed,
            rest.counts.deleted + t.counts.deleted,
            rest.requests + t.requests,
        );
    }
    Ok(Some((first, rest)))
}

/// The reconcile step's line: what the reconciling pass and the rest of its rotation found.
fn reconcile_line(first: &crate::sync::summary::Totals, rest: &crate::sync::summary::Totals) -> String {
    let r = first.reconciled.clone().unwrap_or_default();
    format!(
        "{} days: {} matched, {} ranges differed and were re-listed, {} requests of a budget of {}; found {} new, {} changed, {} deleted; the rest of one rotation (7 more, each re-listing one day in eight whole) found {} new, {} changed, {} deleted",
        r.days,
        r.matched,
        r.differing,
        r.requests,
        r.budget,
        r.new,
        r.changed,
        r.deleted,
        rest.counts.new,
        rest.counts.changed,
        rest.counts.deleted
    )
}

/// One step of the demo, as it ends.
fn step(n: u32, name: &str, said: &str) {
    println!("  {n}. {name:<10} {said}");
}

/// After the steps: each pass's figures, what `verify` said, and the queries to try.
fn print_figures(
    dir: &Path,
    backfill: &crate::sync::summary::Totals,
    converged: Option<&(crate::sync::summary::Totals, crate::sync::summary::Totals)>,
    findings: &crate::verify::Findings,
) {
    println!("\nFigures (each pass's summary, as the log says it):\n  backfill:   {backfill}");
    if let Some((reconciled, rest)) = converged {
        println!("  reconciled: {reconciled}");
        let c = &rest.counts;
        println!(
            "  the rest of the rotation: new={} changed={} deleted={} requests={}",
            c.new, c.changed, c.deleted, rest.requests
        );
    }
    println!("  rejected records (kept in {}/_rejects/): {}", dir.display(), backfill.counts.rejects);
    println!("\n`tasksync verify` on it:\n  {}", findings.to_string().trim_end().replace('\n', "\n  "));
    let (data, now) = (dir.display(), crate::time::show(DEMO_NOW));
    println!(
        "\nTry it in DuckDB:\n  duckdb -c \"SELECT create_date, status, count(*) AS tasks FROM read_parquet('{data}/tasks/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL\""
    );
    println!(
        "\nAnd the state as of the first pass, a day ago, from every version a pass saw (task_history/):\n  duckdb -c \"SELECT status, count(*) AS tasks FROM read_parquet('{data}/task_history/**/*.parquet', hive_partitioning = true) WHERE valid_from <= TIMESTAMPTZ '{now}' AND (valid_to > TIMESTAMPTZ '{now}' OR valid_to IS NULL) AND deleted_at IS NULL GROUP BY ALL ORDER BY ALL\""
    );
    println!(
        "\nA page of charts (success rate, throughput, failures, turnaround, time per stage, stuck tasks):\n  pip install -r reports/requirements.txt && python3 reports/run.py {data} --html report.html --var as_of={now}"
    );
}

/// The demo's source: 42,000 tasks over three days with a spike hour, 5 % faults, signed
/// requests, and a past that changes after the backfill (see `converge`); and its task count.
fn demo_simulator() -> (Arc<Simulator>, u64) {
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
        // After the backfill the source changes its past (see `converge` below).
        past: PastSpec {
            late_per_100k: DEMO_PAST_PER_100K,
            deleted_per_100k: DEMO_PAST_PER_100K,
            ..PastSpec::default()
        },
        ..SimOptions::default()
    };
    (Simulator::new(&spec, options, DEMO_NOW), spec.tasks + 12_000)
}

/// Where the demo writes: its data set, its state database and its log.
pub const DEMO_DIR: &str = "demo-data";

/// Starts the simulator on a free port, backfills three days into `dir`, runs the passes
/// the service would while the source changes its past, verifies the result against the
/// simulator's truth, and prints one line per step, then the figures and queries to try.
/// The full log is `dir/demo.log` (`verbose`: on stderr, live).
pub async fn demo(dir: &Path, verbose: bool) -> anyhow::Result<()> {
    let log =
        if verbose { "shown live".to_string() } else { format!("in {}/demo.log; -v shows it live", dir.display()) };
    println!(
        "tasksync demo: a simulated list_task API and a real, signed sync into {}/ (the full log is {log})",
        dir.display()
    );
    let (sim, tasks) = demo_simulator();
    let (addr, server) = crate::simulator::spawn(sim.clone(), "127.0.0.1:0").await?;
    step(
        1,
        "simulator",
        &format!("{tasks} tasks over {DEMO_DAYS} days (one spike hour), 5 % faults, signed requests, on http://{addr}"),
    );
    let cfg = demo_config(&format!("http://{addr}"), dir)?;
    let range = Window::new(floor_day(DEMO_NOW) - DEMO_DAYS * DAY, DEMO_NOW);
    let totals = run_backfill(cfg.clone(), Arc::new(|| DEMO_NOW), range).await?;
    let c = &totals.counts;
    step(
        2,
        "backfill",
        &format!(
            "{range}: {} tasks, {} new, in {} windows; {} requests ({} retried); {} rejects; {:.1} s",
            c.tasks, c.new, totals.windows, totals.requests, totals.retries, c.rejects, totals.seconds
        ),
    );
    let pct = f64::from(DEMO_PAST_PER_100K) / 1000.0;
    step(
        3,
        "passes",
        &format!(
            "the service's next pass, then a day later on the simulator's clock, with the source's past changed: {pct} % of tasks deleted upstream, {pct} % listed late"
        ),
    );
    let converged = converge(&sim, cfg, range).await?;
    server.abort();
    match &converged {
        Some((reconciled, rest)) => step(4, "reconcile", &reconcile_line(reconciled, rest)),
        None => step(4, "reconcile", "an earlier demo here already reconciled the changed past; nothing more to do"),
    }
    let findings = crate::verify::verify(dir);
    let stored = findings.rows as usize;
    let live = stored - findings.deleted as usize;
    let truth = sim.truth(range.start, range.end, false).len();
    let verdict = if live == truth { "exact" } else { "MISMATCH" };
    let ok = if findings.problems.is_empty() { "ok" } else { "PROBLEMS (below)" };
    step(
        5,
        "verify",
        &format!(
            "rows stored: {stored}; marked deleted upstream: {}; live: {live}; simulator truth: {truth}; {verdict}; verify: {ok}",
            findings.deleted
        ),
    );
    print_figures(dir, &totals, converged.as_ref(), &findings);
    anyhow::ensure!(live == truth, "the demo's data set holds {live} live rows but the simulator's truth has {truth}");
    anyhow::ensure!(findings.problems.is_empty(), "verify found problems in the demo's data set (listed above)");
    Ok(())
}
