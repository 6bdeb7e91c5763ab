//! What a pass needs, opened once per process: config, client, sink, state, rejects, clock,
//! and the locks that keep writers apart.

use std::sync::{Arc, Mutex};

use super::SyncError;
use crate::commit::Outputs;
use crate::commit::hold::PartitionHold;
use crate::config::Config;
use crate::sink::SinkError;
use crate::sink::rejects::RejectLog;
use crate::sink::store::Store;
use crate::source::client::Client;
use crate::source::paging::WalkLimits;
use crate::state::{State, StateError};
use crate::time::Clock;

/// Everything a pass needs, opened once per process. Other processes may write the same
/// output and state database at the same time: partitions are locked one at a time
/// ([`Context::lock_partition`]), each process stages in its own area, and SQLite shares
/// the state database.
pub struct Context {
    /// The validated configuration.
    pub cfg: Config,
    /// The API client (rate limit and in-flight bound are shared by all windows).
    pub client: Arc<Client>,
    /// The output directory.
    pub sink: Arc<Store>,
    /// The checkpoint database; a std mutex since every use is a short blocking call.
    pub state: Arc<Mutex<State>>,
    /// Where undecodable records go.
    pub rejects: Arc<RejectLog>,
    /// "Now", injected.
    pub clock: Clock,
    /// Prometheus counters, updated by the client, the windows and the pass.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The partitions this process's windows hold (step 0 of the commit protocol).
    partition_locks: crate::commit::hold::PartitionLocks,
    /// Whether the API's clock was asked for already (it may send no `Date` at all).
    probed: std::sync::atomic::AtomicBool,
}

/// Records, at first use, the settings that decide a task's create time and so its
/// partition; refuses a config that contradicts them.
fn pin_settings(state: &State, cfg: &Config, now: i64) -> Result<(), SyncError> {
    let (key, configured) = ("api.local_time_zone", cfg.api.local_time_zone.to_string());
    match state.pin_setting(key, &configured, now)? {
        Ok(()) => Ok(()),
        Err(pinned) => Err(SyncError::Pinned { key, configured, pinned, state: cfg.storage.state_db.clone() }),
    }
}

impl Context {
    /// Opens the state database, the output (with this process's staging area) and the
    /// client.
    pub fn open(cfg: Config, clock: Clock) -> Result<Context, SyncError> {
        let state = State::open(&cfg.storage.state_db)?;
        pin_settings(&state, &cfg, clock())?;
        let remote = cfg.storage.s3.as_ref().map(crate::sink::store::remote::Remote::open).transpose()?;
        let sink = Store::open_with(&cfg.storage.output_dir, remote.clone())?.with_history(cfg.storage.history)?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let observer = Arc::new(super::observe::MetricsObserver(metrics.clone()));
        let client =
            Client::new(&cfg.api, cfg.storage.keep_url_query, clock.clone(), observer).map_err(SyncError::Setup)?;
        let now = clock();
        metrics.started(now);
        Ok(Context {
            rejects: Arc::new(RejectLog::new(&cfg.storage.output_dir, now, remote)),
            client: Arc::new(client),
            sink: Arc::new(sink),
            state: Arc::new(Mutex::new(state)),
            clock,
            metrics,
            cfg,
            partition_locks: Default::default(),
            probed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Serves `GET /metrics` while the returned guard lives, when `cfg.metrics.listen` is
    /// set; an address in use is an error. A one-off `sync` reaches here with the
    /// configured address cleared (it belongs to the service, see `cli.rs`).
    pub async fn serve_metrics(&self) -> Result<Option<crate::metrics::serve::Served>, SyncError> {
        let Some(endpoint) = super::observe::endpoint(&self.cfg, self.clock.clone()) else { return Ok(None) };
        Ok(Some(crate::metrics::serve::start(endpoint, self.metrics.clone()).await?))
    }

    /// The walker's limits, from `[api]`.
    pub fn limits(&self) -> WalkLimits {
        WalkLimits {
            max_offset: self.cfg.api.max_offset,
            repage_attempts: self.cfg.api.repage_attempts,
            concurrency: self.cfg.api.concurrency,
        }
    }

    /// Partition `date` for this window alone, across processes: held from before the
    /// stored file is read until after the window's checkpoint (see `commit/mod.rs`).
    pub async fn lock_partition(&self, date: &str) -> Result<PartitionHold, SyncError> {
        // Waiting for another live writer (a backfill beside the service) is progress for
        // the watchdog; one that hangs holding the lock would keep us waiting, not dead.
        let stats = self.client.stats.clone();
        Ok(self.partition_locks.hold(&self.sink, date, || stats.touch()).await?)
    }

    /// Where a window's commit writes, and the settings its checkpoint records by.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            store: self.sink.clone(),
            rejects: self.rejects.clone(),
            state: self.state.clone(),
            settle: self.cfg.sync.settle.as_secs() as i64,
            give_up_after: self.cfg.sync.give_up_after.as_secs() as i64,
        }
    }

    /// "Now" for planning: our clock, or the API's own when it is behind ours (from the
    /// `Date` of its responses; one small request asks for it, once per process, when none
    /// has come yet), so that no window reaches past what the API can already list.
    pub async fn planning_now(&self) -> Result<i64, SyncError> {
        let now = (self.clock)();
        let probed = self.probed.swap(true, std::sync::atomic::Ordering::SeqCst);
        let api_now = if probed && !self.client.clock_stepped(now) {
            self.client.api_now(now)
        } else {
            self.client.probe_clock(now).await.map_err(crate::source::paging::WalkError::from)?
        };
        let api_now = api_now.unwrap_or(now);
        if api_now < now - 1 {
            tracing::warn!(behind_s = now - api_now, api_now = %crate::time::show(api_now), "The API's clock is behind ours; planning no further than its now");
        }
        Ok(now.min(api_now))
    }

    /// Runs `f` on the state database off the async threads.
    pub async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, SyncError> {
        Ok(crate::commit::with_state(&self.state, f).await?)
    }

    /// Runs a file operation off the async threads (see [`crate::commit::blocking`]).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
    ) -> Result<T, SyncError> {
        Ok(crate::commit::blocking(f).await?)
    }
}
