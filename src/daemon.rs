//! `tasksync run`: incremental passes on the cron schedule, never overlapping, with
//! systemd readiness, status and watchdog notifications, and a bounded clean shutdown.
//!
//! Shutdown is a future the caller hands in (`cli.rs` wires SIGTERM and SIGINT to it; tests
//! a channel), as mini-redis does. When it completes, no new window starts; windows in flight get up to
//! [`SHUTDOWN_GRACE`] to finish and checkpoint, then are dropped. Dropping one never leaves
//! partial data: its files are published whole (a rename or a conditional PUT, which once
//! started finishes under the partition's lock) or not at all, and its
//! checkpoint is not written, so the next pass redoes it. The process then exits 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::Config;
use crate::metrics::serve::Served;
use crate::sync::{Context, PassKind, run_pass};
use crate::time::Clock;

/// How long in-flight windows may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

fn notify(state: &[NotifyState]) {
    // Outside systemd there is no socket and this is a no-op.
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "Could not notify systemd");
    }
}

/// Runs the daemon until `shutdown` completes; `start` is `sync.start`.
pub async fn run(cfg: Config, clock: Clock, start: i64, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Daemon::open(cfg, clock, start).await?.run(shutdown).await
}

/// A daemon opened (state, output, client) and serving its metrics, before its first pass.
pub struct Daemon {
    /// What every pass works with.
    ctx: Arc<Context>,
    /// The metrics server, stopped when the daemon ends.
    served: Option<Served>,
    /// `sync.start`, where the very first pass begins.
    start: i64,
}

impl Daemon {
    /// Opens everything and binds `metrics.listen`; an error here means the service never
    /// reported ready.
    pub async fn open(cfg: Config, clock: Clock, start: i64) -> anyhow::Result<Daemon> {
        let ctx = Arc::new(Context::open(cfg, clock)?);
        let served = ctx.serve_metrics().await?;
        Ok(Daemon { ctx, served, start })
    }

    /// The address `/metrics` is served at (the port chosen when `metrics.listen` said 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.served.as_ref().map(|s| s.addr)
    }

    /// Passes on the schedule, the first at once, until `shutdown` completes.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Daemon { ctx, served: _served, start } = self;
        let schedule = ctx.cfg.sync.schedule.clone();
        let busy = Arc::new(AtomicBool::new(false));
        let (tick_tx, mut ticks) = tokio::sync::mpsc::channel::<()>(1);
        let mut scheduler = start_scheduler(&schedule, busy.clone(), tick_tx.clone()).await?;
        let watchdog =
            sd_notify::watchdog_enabled().map(|every| spawn_watchdog(every, busy.clone(), ctx.client.stats.clone()));
        notify(&[NotifyState::Ready, NotifyState::Status("started; first pass running")]);
        tracing::info!(schedule = %schedule, "Daemon started");
        let _ = tick_tx.try_send(()); // the first pass runs at start

        tokio::pin!(shutdown);
        let stop = Arc::new(AtomicBool::new(false));
        // `shutdown` is polled until it completes once, and never after: each arm that sees
        // it leaves the loop.
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(()) = ticks.recv() => {
                    ctx.client.stats.touch();
                    busy.store(true, Ordering::SeqCst);
                    let pass = run_pass(&ctx, PassKind::Incremental { start }, stop.clone());
                    tokio::pin!(pass);
                    tokio::select! {
                        r = &mut pass => report(r),
                        () = &mut shutdown => {
                            shutdown_during_pass(&stop, pass).await;
                            break;
                        }
                    }
                    busy.store(false, Ordering::SeqCst);
                }
            }
        }
        notify(&[NotifyState::Stopping]);
        let _ = scheduler.shutdown().await;
        if let Some(w) = watchdog {
            w.abort();
        }
        tracing::info!("Daemon stopped");
        Ok(())
    }
}

/// The scheduler only sends ticks; a tick while a pass runs is skipped and logged.
async fn start_scheduler(
    schedule: &str,
    busy: Arc<AtomicBool>,
    tick_tx: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async(schedule, move |_, _| {
        let (tx, busy) = (tick_tx.clone(), busy.clone());
        Box::pin(async move {
            if busy.load(Ordering::SeqCst) || tx.try_send(()).is_err() {
                tracing::info!("Skipping a scheduled pass: the previous one is still running");
            }
        })
    })
    .map_err(|e| anyhow::anyhow!("sync.schedule `{schedule}` is not a usable cron expression: {e}"))?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    Ok(scheduler)
}

/// Pings systemd's watchdog at half the interval the unit asked for, while the daemon
/// makes progress: between passes, or during a pass whose last response arrived within
/// the interval. A pass stuck longer gets no ping, and systemd restarts the service.
fn spawn_watchdog(
    every: Duration,
    busy: Arc<AtomicBool>,
    stats: Arc<crate::source::ApiStats>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stalled = false;
        loop {
            let stuck = busy.load(Ordering::SeqCst) && stats.since_progress() > every;
            if !stuck {
                notify(&[NotifyState::Watchdog]);
            } else if !stalled {
                let idle_s = stats.since_progress().as_secs();
                tracing::warn!(
                    idle_s,
                    "No response for longer than the watchdog interval; withholding the watchdog ping"
                );
            }
            stalled = stuck;
            tokio::time::sleep(every / 2).await;
        }
    })
}

async fn shutdown_during_pass<F>(stop: &AtomicBool, pass: std::pin::Pin<&mut F>)
where
    F: std::future::Future<Output = Result<crate::sync::summary::Totals, crate::sync::SyncError>>,
{
    stop.store(true, Ordering::SeqCst);
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping: letting in-flight windows finish")]);
    tracing::info!(grace_s = SHUTDOWN_GRACE.as_secs(), "Stopping: no new windows; in-flight windows may finish");
    match tokio::time::timeout(SHUTDOWN_GRACE, pass).await {
        Ok(result) => report(result),
        Err(_) => tracing::warn!("Dropped the windows still in flight; the next pass redoes them"),
    }
}

fn report(result: Result<crate::sync::summary::Totals, crate::sync::SyncError>) {
    match result {
        Ok(totals) if !totals.left_behind.is_empty() => {
            let ranges: Vec<String> = totals.left_behind.iter().map(ToString::to_string).collect();
            tracing::warn!(ranges = %ranges.join("; "), "Pass left ranges for the next pass");
            notify(&[NotifyState::Status(&format!("last pass partial: {totals}"))]);
        }
        Ok(totals) => notify(&[NotifyState::Status(&format!("last pass ok: {totals}"))]),
        Err(e) => {
            tracing::error!(error = %e, "Pass failed; the next scheduled pass retries");
            notify(&[NotifyState::Status(&format!("last pass failed: {e}"))]);
        }
    }
}
