//! One sync pass: plan windows -> walk them leaf by leaf -> stream each leaf through the
//! merge into its partition's staged file -> replace files -> checkpoint. The order per
//! window is always data durable first, checkpoint second.
//!
//! Two kinds of pass share this machinery: a backfill of `[from, to)` (progress kept as
//! completed intervals of its job) and the incremental pass in [`incremental`] (progress
//! kept as a cursor, plus re-checks of unfinished tasks).

pub mod incremental;
pub mod summary;
pub mod walker;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};

use crate::api::client::Client;
use crate::config::Config;
use crate::plan::{Progress, Window, pending_windows};
use crate::row::TaskRow;
use crate::sink::SinkError;
use crate::sink::partition::PartitionMerge;
use crate::sink::rejects::RejectLog;
use crate::sink::writer::Sink;
use crate::state::{State, StateError, TaskChanges};
use crate::time::{Clock, micros_from_secs, utc_date};
use summary::{Summary, Totals};
use walker::{WalkError, WalkLimits};

/// Why a pass stopped. Every message names the window, file or database involved.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("{0}")]
    Setup(String),
}

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
}

impl Context {
    /// Takes the writer lock, then opens the state database, the output and the client.
    pub fn open(cfg: Config, clock: Clock) -> Result<Context, SyncError> {
        let lock = crate::lock::acquire(&cfg.storage.state_db)?;
        let state = State::open(&cfg.storage.state_db)?;
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
        })
    }

    fn limits(&self) -> WalkLimits {
        WalkLimits { max_offset: self.cfg.api.max_offset, repage_attempts: self.cfg.api.repage_attempts, concurrency: self.cfg.api.concurrency }
    }

    fn partition_lock(&self, date: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.partition_locks.lock().expect("never poisoned");
        locks.entry(date.to_string()).or_default().clone()
    }

    /// Runs `f` on the state database off the async threads.
    pub async fn with_state<T: Send + 'static>(&self, f: impl FnOnce(&mut State) -> Result<T, StateError> + Send + 'static) -> Result<T, SyncError> {
        let state = self.state.clone();
        let joined = tokio::task::spawn_blocking(move || f(&mut state.lock().expect("never poisoned"))).await;
        joined.map_err(|e| SyncError::Setup(format!("a state database task failed: {e}")))?.map_err(SyncError::State)
    }
}

/// One pass over a set of windows: its counters and its stop signal.
pub struct Pass<'a> {
    pub ctx: &'a Context,
    /// This pass's counters.
    pub summary: Summary,
    /// Set by SIGTERM/SIGINT: start no new window; in-flight ones finish.
    pub stop: Arc<AtomicBool>,
}

impl<'a> Pass<'a> {
    pub fn new(ctx: &'a Context, stop: Arc<AtomicBool>) -> Pass<'a> {
        Pass { ctx, summary: Summary::new(ctx.client.stats.clone()), stop }
    }
}

/// What completing a window records besides its tasks' states.
#[derive(Clone)]
pub enum Checkpoint {
    /// A completed interval of this backfill job.
    Backfill(Arc<str>),
    /// A forward window of an incremental pass: may move the cursor.
    Forward(Arc<Mutex<Progress>>),
    /// A re-check of unfinished tasks: nothing but their states.
    Recheck,
}

/// The job id of a backfill: the same `--from/--to` resumes the same job.
pub fn backfill_job_id(range: Window) -> String {
    format!("backfill:{}-{}", range.start, range.end)
}

/// A one-off backfill of `range`; resumable, it skips windows already done. It does not
/// touch the incremental cursor.
pub async fn backfill(pass: &Pass<'_>, range: Window) -> Result<(), SyncError> {
    let job: Arc<str> = backfill_job_id(range).into();
    let now = (pass.ctx.clock)();
    let j = job.clone();
    let done = pass.ctx.with_state(move |s| {
        s.ensure_job(&j, "backfill", range, now)?;
        s.done_intervals(&j)
    }).await?;
    // A backfill never asks about the future: a window reaching past "now" keeps gaining
    // tasks while it is paged and cannot be checked complete. What lies beyond is left
    // undone in the job, for the same command later (or the incremental passes).
    let reach = range.end.min(now);
    let windows = if reach > range.start { pending_windows(range.start, reach, &done) } else { Vec::new() };
    let skipped = (reach - range.start).max(0) - windows.iter().map(Window::width).sum::<i64>();
    tracing::info!(range = %range, windows = windows.len(), skipped_s = skipped, "Backfill planned");
    if reach < range.end {
        tracing::info!(until = %crate::time::show(reach), "Backfill stops at now; run it again later for the rest of its range");
    }
    let all_planned = windows.len();
    let checkpoint = Checkpoint::Backfill(job.clone());
    let done_now = run_windows(pass, windows.into_iter().map(|w| (w, checkpoint.clone())).collect()).await?;
    if done_now == all_planned && reach == range.end {
        pass.ctx.with_state(move |s| s.finish_job(&job, now)).await?;
    }
    Ok(())
}

/// Windows walked at once. Each pages `api.concurrency` requests at a time, so two keep
/// the client busy while one merges and writes; each holds a leaf, a write batch and a
/// row group in memory, so memory grows with this and not with the range. Measured on a
/// 1M-task backfill (BENCHMARKS.md): four took 74 MB at the same speed as two at 53-60 MB.
const WINDOWS_IN_FLIGHT: usize = 2;

/// Processes windows concurrently (the client bounds requests in flight); stops at the
/// first error, and starts no new window once `stop` is set. Returns how many completed.
pub async fn run_windows(pass: &Pass<'_>, windows: Vec<(Window, Checkpoint)>) -> Result<usize, SyncError> {
    let parallel = pass.ctx.cfg.api.concurrency.clamp(1, WINDOWS_IN_FLIGHT);
    futures::stream::iter(windows)
        .take_while(|_| std::future::ready(!pass.stop.load(Ordering::SeqCst)))
        .map(|(w, c)| process_window(pass, w, c))
        .buffer_unordered(parallel)
        .try_fold(0, |n, ()| std::future::ready(Ok(n + 1)))
        .await
}

/// One window: walk it leaf by leaf, streaming each leaf into its partition's rewrite;
/// then write rejects, commit the partition file, and only then checkpoint.
async fn process_window(pass: &Pass<'_>, window: Window, checkpoint: Checkpoint) -> Result<(), SyncError> {
    let ctx = pass.ctx;
    let started = std::time::Instant::now();
    let date = utc_date(window.start);
    let guard = ctx.partition_lock(&date);
    let held = guard.lock().await;
    let seen_at = (ctx.clock)();
    let tracked = ctx.with_state(move |s| s.unfinished_ids(window)).await?;
    let (sink, d) = (ctx.sink.clone(), date.clone());
    let mut merge = blocking(ctx, move || PartitionMerge::open(sink, &d, micros_from_secs(seen_at))).await?;
    let mut walk = walker::Walk::new(&ctx.client, window, ctx.limits());
    let (mut changes, mut rejects, mut tasks, mut leaves, mut repaged) = (TaskChanges::default(), Vec::new(), 0, 0, 0);
    while let Some(leaf) = walk.next_leaf().await? {
        (tasks, leaves, repaged) = (tasks + leaf.rows.len(), leaves + 1, repaged + u64::from(leaf.repaged));
        note_changes(&leaf.rows, &tracked, &mut changes);
        rejects.extend(leaf.rejects);
        let (w, rows) = (leaf.window, leaf.rows);
        merge = blocking(ctx, move || merge.add(w, rows).map(|()| merge)).await?;
    }
    let n_rejects = rejects.len();
    let (log, label) = (ctx.rejects.clone(), window.to_string());
    blocking(ctx, move || log.append(&label, seen_at, &rejects)).await?;
    let outcome = blocking(ctx, move || merge.finish()).await?;
    drop(held);

    let job = match &checkpoint {
        Checkpoint::Backfill(job) => Some(job.to_string()),
        _ => None,
    };
    crate::crash::point("before_checkpoint");
    ctx.with_state(move |s| s.complete_window(job.as_deref(), window, &changes, seen_at)).await?;
    if let Checkpoint::Forward(progress) = &checkpoint {
        let cursor = progress.lock().expect("never poisoned").done(window);
        if let Some(cursor) = cursor {
            ctx.with_state(move |s| s.advance_cursor(crate::state::INCREMENTAL, cursor)).await?;
        }
    }
    let (new, changed, written) = (outcome.new, outcome.changed, outcome.written);
    pass.summary.window_done(leaves, repaged, tasks as u64, new as u64, changed as u64, written, n_rejects as u64);
    tracing::info!(
        window = %window, partition = %date, tasks, new, changed, file_written = written, rejects = n_rejects,
        leaves, ms = started.elapsed().as_millis() as u64, "Window done"
    );
    Ok(())
}

/// Runs a file operation off the async threads. It holds the writer lock until it ends,
/// so that the lock outlives any write a cancelled window left running.
async fn blocking<T: Send + 'static>(ctx: &Context, f: impl FnOnce() -> Result<T, SinkError> + Send + 'static) -> Result<T, SyncError> {
    let lock = ctx.lock.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let _lock = lock;
        f()
    })
    .await;
    joined.map_err(|e| SyncError::Setup(format!("a background write task failed: {e}")))?.map_err(SyncError::Sink)
}

/// Which tasks to keep looking at (unfinished) and which to stop looking at: final tasks
/// that the state database still tracks (`tracked`), and only those, so that a window of
/// finished tasks costs the checkpoint nothing per task.
fn note_changes(rows: &[TaskRow], tracked: &HashSet<String>, changes: &mut TaskChanges) {
    for r in rows {
        if !r.is_final() {
            changes.unfinished.push((r.task_id.clone(), r.create_time, r.status.clone()));
        } else if tracked.contains(&r.task_id) {
            changes.finished.push(r.task_id.clone());
        }
    }
}

/// What kind of pass to run.
#[derive(Debug, Clone, Copy)]
pub enum PassKind {
    Backfill(Window),
    Incremental,
}

/// Runs one pass, recording it in the `runs` table, and returns its totals.
pub async fn run_pass(ctx: &Context, kind: PassKind, stop: Arc<AtomicBool>) -> Result<Totals, SyncError> {
    let name = match kind {
        PassKind::Backfill(_) => "backfill",
        PassKind::Incremental => "incremental",
    };
    let now = (ctx.clock)();
    let run_id = ctx.with_state(move |s| s.start_run(name, now)).await?;
    let pass = Pass::new(ctx, stop);
    let result = match kind {
        PassKind::Backfill(range) => backfill(&pass, range).await,
        PassKind::Incremental => incremental::incremental(&pass).await,
    };
    let totals = pass.summary.totals();
    let error = result.as_ref().err().map(ToString::to_string);
    let json = serde_json::to_string(&totals).unwrap_or_default();
    let now = (ctx.clock)();
    ctx.with_state(move |s| s.finish_run(run_id, now, &json, error.as_deref())).await?;
    result?;
    tracing::info!(kind = name, %totals, "Pass finished");
    Ok(totals)
}

/// Opens everything, runs one backfill of `range`, records the run, returns its totals.
pub async fn run_backfill(cfg: Config, clock: Clock, range: Window) -> Result<Totals, SyncError> {
    let ctx = Context::open(cfg, clock)?;
    run_pass(&ctx, PassKind::Backfill(range), Arc::new(AtomicBool::new(false))).await
}

/// Opens everything and runs one incremental pass.
pub async fn run_incremental(cfg: Config, clock: Clock) -> Result<Totals, SyncError> {
    let ctx = Context::open(cfg, clock)?;
    run_pass(&ctx, PassKind::Incremental, Arc::new(AtomicBool::new(false))).await
}
