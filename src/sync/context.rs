//! What a pass needs, opened once per process: config, client, sink, state, rejects, clock,
//! and the locks that keep writers apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::SyncError;
use super::walker::WalkLimits;
use crate::api::client::Client;
use crate::config::Config;
use crate::sink::SinkError;
use crate::sink::rejects::RejectLog;
use crate::sink::writer::Sink;
use crate::state::{State, StateError};
use crate::time::Clock;

/// Everything a pass needs, opened once per process. Holds the writer lock for its life.
pub struct Context {
    /// The validated configuration.
    pub cfg: Config,
    /// The API client (rate limit and in-flight bound are shared by all windows).
    pub client: Arc<Client>,
    /// The output directory.
    pub sink: Arc<Sink>,
    /// The checkpoint database; a std mutex since every use is a short blocking call.
    pub state: Arc<Mutex<State>>,
    /// Where undecodable records go.
    pub rejects: Arc<RejectLog>,
    /// "Now", injected.
    pub clock: Clock,
    /// One writer per partition at a time within this process.
    partition_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Keeps other processes out of this state database and output. Shared with every
    /// background write, so it is released only after the last one has finished.
    lock: Arc<crate::lock::WriterLock>,
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
    /// Takes the writer lock, then opens the state database, the output and the client.
    pub fn open(cfg: Config, clock: Clock) -> Result<Context, SyncError> {
        let lock = crate::lock::acquire(&cfg.storage.state_db)?;
        let state = State::open(&cfg.storage.state_db)?;
        pin_settings(&state, &cfg, clock())?;
        let sink = Sink::open(&cfg.storage.output_dir)?;
        let client = Client::new(&cfg.api, cfg.storage.keep_url_query, clock.clone()).map_err(SyncError::Setup)?;
        let now = clock();
        Ok(Context {
            rejects: Arc::new(RejectLog::new(&cfg.storage.output_dir, now)),
            client: Arc::new(client),
            sink: Arc::new(sink),
            state: Arc::new(Mutex::new(state)),
            clock,
            cfg,
            partition_locks: Mutex::new(HashMap::new()),
            lock: Arc::new(lock),
            probed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The walker's limits, from `[api]`.
    pub fn limits(&self) -> WalkLimits {
        WalkLimits {
            max_offset: self.cfg.api.max_offset,
            repage_attempts: self.cfg.api.repage_attempts,
            concurrency: self.cfg.api.concurrency,
        }
    }

    /// The lock of partition `date` within this process.
    pub fn partition_lock(&self, date: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.partition_locks.lock().expect("never poisoned");
        locks.entry(date.to_string()).or_default().clone()
    }

    /// "Now" for planning: our clock, or the API's own when it is behind ours (from the
    /// `Date` of its responses; one small request asks for it, once per process, when none
    /// has come yet), so that no window reaches past what the API can already list.
    pub async fn planning_now(&self) -> Result<i64, SyncError> {
        let now = (self.clock)();
        let api_now = if self.probed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.client.api_now(now)
        } else {
            self.client.probe_clock(now).await.map_err(super::walker::WalkError::from)?
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
        let state = self.state.clone();
        let joined = tokio::task::spawn_blocking(move || f(&mut state.lock().expect("never poisoned"))).await;
        joined.map_err(|e| SyncError::Setup(format!("a state database task failed: {e}")))?.map_err(SyncError::State)
    }

    /// Runs a file operation off the async threads. It holds the writer lock until it ends,
    /// so that the lock outlives any write a cancelled window left running.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let lock = self.lock.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            f()
        })
        .await;
        joined.map_err(|e| SyncError::Setup(format!("a background write task failed: {e}")))?.map_err(SyncError::Sink)
    }
}
