//! The command line of docs/contract.md and [`run`], which turns any outcome into an exit code
//! and at most one plain line on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::plan::LeftBehind;
use crate::time::{parse_instant, system_clock};

/// The version `--version` prints: the package's and the git commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TASKSYNC_COMMIT"), ")");

/// Exports the list_task API into exact, de-duplicated, hive-partitioned Parquet.
#[derive(Debug, Parser)]
#[command(name = "tasksync", version = VERSION, about)]
pub struct Cli {
    /// Configuration file [default: $TASKSYNC_CONFIG, then /etc/tasksync/tasksync.toml]
    #[arg(long, global = true, env = "TASKSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass, then exit; with --from/--to a resumable one-off backfill of [from, to).
    Sync {
        /// Start of the backfill: 2021-10-12, an RFC 3339 time, or unix seconds.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End of the backfill (exclusive), same forms as --from.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// The backfill's range as FROM..TO in one word (what a systemd instance name
        /// carries: tasksync-backfill@2025-01-01..2025-06-01).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        range: Option<String>,
        /// Serve Prometheus /metrics for this run at ADDR (e.g. 127.0.0.1:9465). The
        /// configured `metrics.listen` belongs to `run`: a backfill beside the service never
        /// takes it, and the service's scrape shows the backfill's progress.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Daemon: a sync pass on the configured schedule.
    Run,
    /// Checkpoints, lag, unfinished tasks, last runs.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and probe the API once (signed).
    Check,
    /// Check every promise the data set makes to analysts (read-only).
    Verify,
    /// Serve the built-in simulated list_task API.
    Simulate(crate::demo::SimulateArgs),
    /// Simulator + a real sync into ./demo-data, then a summary and a query to try.
    Demo {
        /// Show the full log live on stderr (it goes to demo-data/demo.log otherwise).
        #[arg(short, long)]
        verbose: bool,
    },
}

/// The default configuration path when neither --config nor $TASKSYNC_CONFIG is given.
pub const DEFAULT_CONFIG: &str = "/etc/tasksync/tasksync.toml";

/// Parses the command line, runs the command, returns the exit code: 0 success,
/// 1 a failed run (API, disk, state), 2 a usage or configuration error, 3 a `sync` that
/// left ranges for the next run.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let log_file = match cli.command {
        Command::Demo { verbose: false } => match demo_log() {
            Ok(file) => Some(file),
            Err(e) => return fail(1, &e),
        },
        _ => None,
    };
    init_logging(log_file);
    end_on_panic();
    // File and database work runs on blocking threads: two windows in flight need a few,
    // and each extra thread would hold its own stack and malloc arena. Part of the memory
    // measurements in BENCHMARKS.md (not measured on its own).
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(6).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code =
                if refused(&e) || e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<UsageError>().is_some()
                {
                    2
                } else if e.downcast_ref::<RangesLeft>().is_some() {
                    3
                } else {
                    1
                };
            fail(code, &one_sentence(&e))
        }
    }
}

/// A `sync` that committed every window it could and left some for the next run (exit 3).
/// One line however many ranges: the first whole, how many share its reason, and where the
/// rest are listed (eleven full sentences made one line of 5,000 characters).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} finished but left {n} range(s) for the next run: {}; run the same command again later (`tasksync status` {})",
    summarize(.ranges), if .ranges.len() > 1 { "lists them all" } else { "shows why" },
    n = .ranges.len()
)]
pub struct RangesLeft {
    /// "the backfill" or "the sync".
    what: &'static str,
    /// Each range with its reason.
    ranges: Vec<LeftBehind>,
}

/// The first range whole; for more, how many share its reason.
fn summarize(ranges: &[LeftBehind]) -> String {
    match ranges {
        [] => String::new(),
        [one] => one.to_string(),
        [first, rest @ ..] => {
            let same = rest.iter().filter(|r| r.reason == first.reason).count();
            format!("the first {first}, and {} more ({same} of them for the same reason)", rest.len())
        }
    }
}

/// `Ok` when nothing was left behind; else the exit-3 error naming what was.
fn all_done(what: &'static str, totals: &crate::sync::summary::Totals) -> Result<(), RangesLeft> {
    if totals.left_behind.is_empty() { Ok(()) } else { Err(RangesLeft { what, ranges: totals.left_behind.clone() }) }
}

/// Whether the failure is a setting that contradicts what the state database recorded, or
/// a state database a newer tasksync wrote: the operator's to fix, like a config error.
fn refused(e: &anyhow::Error) -> bool {
    use crate::state::StateError;
    use crate::sync::SyncError;
    let state = match e.downcast_ref::<SyncError>() {
        Some(SyncError::Pinned { .. }) => return true,
        Some(SyncError::State(s)) => Some(s),
        _ => e.downcast_ref::<StateError>(),
    };
    matches!(state, Some(StateError::TooNew { .. }))
}

/// A command-line value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// The error and its causes on one line. Our typed errors embed their cause in their own
/// message: a cause already said ends the line, and so do its own causes (SQLite's error
/// says its code again as "Error code 5: The database file is locked").
fn one_sentence(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            break;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The one rule for a panic anywhere (a bug): the process ends at once with exit 1 and one
/// line, so that systemd restarts it. A process that went on after a panic would hold a
/// poisoned lock (the state database's, every later pass failing) while its watchdog kept
/// pinging between passes. Ending like this is as safe as a kill -9, which the crash tests
/// prove: the next run replays what was not checkpointed. The message is scrubbed of
/// presigned credentials like every other line.
fn end_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let message = crate::presigned::scrub(&info.to_string()).replace('\n', " ");
        eprintln!(
            "tasksync: error: internal error (a bug; please report it): {message}; exiting so that the service restarts"
        );
        std::process::exit(1);
    }));
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("tasksync: error: {}", message.replace('\n', " "));
    ExitCode::from(code)
}

/// Logs go to stderr: readable and coloured on a terminal; plain `key=value` lines without
/// our own timestamp under systemd (journald stamps them); JSON with `TASKSYNC_LOG_FORMAT=json`.
/// `TASKSYNC_LOG` takes a tracing filter (`debug`, `tasksync=trace`, ...). With `file` (the
/// demo's log), plain lines go there instead.
fn init_logging(file: Option<std::fs::File>) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("TASKSYNC_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_cron_scheduler=warn"))
    };
    let builder = || {
        tracing_subscriber::fmt().with_env_filter(filter()).with_writer(crate::progress::log_writer).with_target(false)
    };
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some();
    if let Some(file) = file {
        let _ = builder().with_writer(std::sync::Mutex::new(file)).with_ansi(false).try_init();
        return;
    }
    let _ = match std::env::var("TASKSYNC_LOG_FORMAT").as_deref() {
        Ok("json") => builder().json().try_init(),
        _ if under_systemd => builder().with_ansi(false).without_time().try_init(),
        _ => builder().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
    };
}

/// `demo-data/demo.log`, made afresh: where the demo's full log goes unless `-v`.
fn demo_log() -> Result<std::fs::File, String> {
    let path = std::path::Path::new(crate::demo::DEMO_DIR).join("demo.log");
    std::fs::create_dir_all(crate::demo::DEMO_DIR)
        .and_then(|()| std::fs::File::create(&path))
        .map_err(|e| format!("cannot write the demo's log {}: {e}", path.display()))
}

fn config_path(path: Option<PathBuf>) -> PathBuf {
    path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

fn load_config(path: Option<PathBuf>) -> Result<Config, ConfigError> {
    Config::load(&config_path(path))
}

/// The config of a command that continues from the incremental cursor, and `sync.start`,
/// where its very first pass begins. The one place that requires it: a missing key is a
/// config error (exit 2) naming the file, before anything is opened.
fn load_with_start(path: Option<PathBuf>, command: &str) -> anyhow::Result<(Config, i64)> {
    let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let cfg = Config::load(&path)?;
    let Some(start) = cfg.sync.start else {
        return Err(UsageError(format!(
            "{command} needs `sync.start` in {} (where the first incremental pass begins)",
            path.display()
        ))
        .into());
    };
    Ok((cfg, start))
}

/// A one-off `sync`'s config: `/metrics` only at its own `--metrics-listen`, never at the
/// configured address, which belongs to the service. A backfill started while the service
/// restarts would otherwise hold the port and keep the service from starting.
fn one_off(mut cfg: Config, metrics_listen: Option<std::net::SocketAddr>) -> Config {
    cfg.metrics = crate::config::MetricsConfig { listen: metrics_listen, key: "--metrics-listen" };
    cfg
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sync { range: Some(range), metrics_listen, .. } => {
            let Some((from, to)) = range.split_once("..") else {
                return Err(
                    UsageError(format!("--range: `{range}` is not FROM..TO (e.g. 2025-01-01..2025-06-01)")).into()
                );
            };
            let cli = Cli {
                config: cli.config,
                command: Command::Sync { from: Some(from.into()), to: Some(to.into()), range: None, metrics_listen },
            };
            Box::pin(dispatch(cli)).await
        }
        Command::Sync { from: Some(from), to: Some(to), metrics_listen, .. } => {
            backfill(cli.config, &from, &to, metrics_listen).await
        }
        Command::Sync { metrics_listen, .. } => {
            let (cfg, start) = load_with_start(cli.config, "`sync` without --from/--to")?;
            let cfg = one_off(cfg, metrics_listen);
            let totals = crate::sync::run_incremental(cfg, system_clock(), start).await?;
            println!("Sync done: {totals}");
            Ok(all_done("the sync", &totals)?)
        }
        Command::Run => {
            let (cfg, start) = load_with_start(cli.config, "`run`")?;
            let stop = signalled()?;
            crate::daemon::run(cfg, system_clock(), start, async move {
                stop.await;
            })
            .await
        }
        Command::Status { json } => {
            let cfg = Config::load_without_secret(&config_path(cli.config))?;
            match crate::status::report(&cfg, chrono::Utc::now().timestamp())? {
                None => println!("No state yet at {}: no sync has run.", cfg.storage.state_db.display()),
                Some(r) if json => println!("{}", serde_json::to_string_pretty(&r)?),
                Some(r) => print!("{r}"),
            }
            Ok(())
        }
        Command::Check => {
            let path = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            let cfg = Config::load(&path)?;
            crate::check::check(&cfg, &path.display().to_string(), system_clock()).await
        }
        Command::Verify => verify(cli.config).await,
        Command::Simulate(args) => crate::demo::simulate(args).await,
        Command::Demo { verbose } => crate::demo::demo(std::path::Path::new(crate::demo::DEMO_DIR), verbose).await,
    }
}

/// `sync --from --to`: one backfill of the range.
async fn backfill(
    config: Option<PathBuf>,
    from: &str,
    to: &str,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let (from, to) = (instant("--from", from)?, instant("--to", to)?);
    if from >= to {
        let (from, to) = (crate::time::show(from), crate::time::show(to));
        return Err(UsageError(format!("--from ({from}) must be before --to ({to})")).into());
    }
    let cfg = one_off(load_config(config)?, metrics_listen);
    let totals = crate::sync::run_backfill(cfg, system_clock(), crate::plan::Window::new(from, to)).await?;
    println!("Backfill done: {totals}");
    Ok(all_done("the backfill", &totals)?)
}

/// `verify`: every promise of the data set checked, read-only, with no secret but the
/// store's when the data set is on object storage.
async fn verify(config: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = Config::load_without_secret(&config_path(config))?;
    let out = &cfg.storage.output_dir;
    let (findings, shown) = match &cfg.storage.s3 {
        Some(s3) => (until_signal(crate::verify::verify_remote(s3, out)).await??, s3.url()),
        None => (crate::verify::verify(out), out.display().to_string()),
    };
    print!("{findings}");
    match findings.problems.len() {
        0 => Ok(()),
        n => Err(anyhow::anyhow!("verify found {n} problem(s) in {shown} (listed above)")),
    }
}

fn instant(flag: &str, text: &str) -> Result<i64, UsageError> {
    parse_instant(text).map_err(|m| UsageError(format!("{flag}: {m}")))
}

/// Runs `work` until it ends or SIGINT / SIGTERM arrives; on a signal the future is
/// dropped, so what it holds (`verify`'s scratch directory) is cleaned up before the
/// process exits with an error naming the signal.
async fn until_signal<T>(work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let signal = signalled()?;
    tokio::select! {
        done = work => Ok(done),
        name = signal => Err(anyhow::anyhow!("stopped by {name} before it finished; nothing was left behind")),
    }
}

/// A future that completes with the signal's name at the first SIGTERM or SIGINT. The
/// handlers are installed now, before the future is first polled: a signal that arrives
/// while the command is still opening its files is not lost.
fn signalled() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_state_database_is_one_sentence_without_sqlites_code_said_again() {
        let locked = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let e = crate::state::StateError::Sqlite { path: "/var/lib/tasksync/state/state.db".into(), source: locked };
        let line = one_sentence(&anyhow::Error::from(crate::sync::SyncError::from(e)));
        assert_eq!(line, "state database /var/lib/tasksync/state/state.db: database is locked");
    }

    #[test]
    fn many_ranges_left_behind_make_one_short_line_naming_the_first_and_what_they_share() {
        let day = 1_633_046_400;
        let ranges: Vec<LeftBehind> = (0..11)
            .map(|i| LeftBehind {
                window: crate::plan::Window::new(day + i * 86_400, day + (i + 1) * 86_400),
                reason: "the API answered with code 1001".into(),
            })
            .collect();
        let line = RangesLeft { what: "the backfill", ranges }.to_string();
        assert!(line.len() < 300, "{} characters: {line}", line.len());
        assert!(line.contains("left 11 range(s)") && line.contains("the first [2021-10-01T00:00:00Z"), "{line}");
        assert!(line.contains("10 more (10 of them for the same reason)") && line.contains("lists them all"), "{line}");
        let left = LeftBehind { window: crate::plan::Window::new(day, day + 60), reason: "why".into() };
        let one = RangesLeft { what: "the sync", ranges: vec![left] }.to_string();
        assert!(
            one.contains("for the next run: [2021-10-01T00:00:00Z, 2021-10-01T00:01:00Z) (why); run")
                && one.contains("shows why"),
            "{one}"
        );
    }
}
