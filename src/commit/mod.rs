//! The one durable write path. Every byte the data set gains, and every checkpoint that
//! records it, goes through here; no other code orders durable writes. A window's commit is
//! three typed stages, each consuming the one before, so that the order is in the types:
//!
//! ```text
//!   sync/window.rs walks leaves ──► Rewrite::add ─┐
//!                                                 ▼
//!   stage       Rewrite::end ──► Ended::finish ──► publish::StagedDay
//!               (+ rejects appended, fsynced)      files fsynced under _staging/, unseen
//!                                                 │
//!   publish     publish::publish ──► publish::Published  tasks/ replaced, then task_history/:
//!               (Store: Local rename | S3 PUT)          what readers see changes here
//!                                                 │
//!   checkpoint  window::WindowCommit::commit ──► SQLite  the window recorded: the commit point
//! ```
//!
//! # Protocol (one window, one partition `D`)
//!
//! | step | what | local files | object storage | a crash here leaves |
//! | --- | --- | --- | --- | --- |
//! | 0 | lock | `{output_dir}/_locks/create_date=D.lock` taken (and this process's own lock) before the stored file is read; held until after step 5 | the same file, in the local work directory `s3-work/` | nothing held: the kernel drops the lock |
//! | 1 | read | `tasks/create_date=D/part-0.parquet` opened as the base | the object fetched into staging with its ETag | nothing written |
//! | 2 | stage | the merged rows written to `_staging/w-…/D.N.parquet` batch by batch while the window is walked | the same, locally | staged files only: the next writer to start removes a dead writer's area |
//! | 3 | rejects | the window's new rejects appended to `_rejects/run-….jsonl`, fsynced | then the rejects object PUT | rejects recorded twice at worst, keyed once in the state |
//! | 3b | stage, end | the window's end decided (moved rows dropped, missing ones marked), the file's footer written and fsynced; the day's history staged the same way (`after_staging_write` once both are) | the same, locally | staged files only |
//! | 4a | publish `tasks/` | rename over the partition file (`after_rename`), fsync its directory; a new partition is built in staging and renamed in whole | one PUT, `If-Match: <ETag>` (`If-None-Match: *` for a new one) (`after_rename`) | a new `tasks/` file whose history lags: the replay catches it up |
//! | 4b | publish `task_history/` | the same for `task_history/create_date=D/part-0.parquet`, whose footer names the `tasks` version it was derived from (`between_tasks_and_history`, reached after a `tasks` file and before a history, whichever the window has; then `after_history_rename`) | one PUT, conditional the same way | both files new, the window not recorded: the replay changes nothing |
//! | 5 | checkpoint | one SQLite transaction: the window (less the parts left behind and the newest `sync.settle`), those parts with their reasons, its tasks' states, the partition's counts per minute, the new rejects' keys (`before_checkpoint`, `in_state`) | the same | **the commit point**: before it the window is replayed, after it nothing is lost |
//! | 6 | unlock, cursor | the partition's locks released; an incremental window committed whole moves the cursor past the unbroken run of such windows (a transaction of its own) | the same | a longer re-scan at worst |
//!
//! Invariants: `tasks/` only ever holds complete files, one per partition, each row's
//! task_id in no other file; a history never runs ahead of its day's `tasks` file (it is
//! published second and derived from the published one); the state database never records a
//! window whose rows are not durable, and the cursor never passes a window not recorded. A
//! window that changed nothing stages and publishes nothing, unless its day's history lags
//! its `tasks` file: then the history alone, caught up.
//!
//! On object storage a precondition failure at step 4 means another writer replaced the
//! object first ([`crate::sink::SinkError::Conflict`]): the window is read and merged again.
//! Adding a publisher (a table format's log, say) touches [`publish`] and the config, not the
//! walk, the merge or the checkpoint.
//!
//! Rooms: [`rewrite`] (one partition rewritten leaf by leaf: stage), [`patch`] (what the
//! window's end decides: moved rows dropped, deleted ones marked), [`derive`] (the day's
//! history at stage time), [`publish`] (the publisher), [`window`] (the three stages of one
//! window, and what its checkpoint records), [`hold`] (step 0: the partition's locks).

pub mod derive;
pub mod hold;
pub mod patch;
pub mod publish;
pub mod rewrite;
pub mod window;

use std::sync::{Arc, Mutex};

use crate::sink::SinkError;
use crate::sink::rejects::RejectLog;
use crate::sink::store::Store;
use crate::state::{State, StateError};

/// What one window did: the one shape of per-window figures that the pass summary, the
/// metrics and the progress bar all count in (the pass's totals are their sum).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WindowCounts {
    /// Leaves it was walked in.
    pub leaves: u64,
    /// Leaves that unstable paging made page again.
    pub repaged: u64,
    /// Ranges split because their `total` kept growing while paged.
    pub unsettled: u64,
    /// Tasks received (one per task_id and leaf).
    pub tasks: u64,
    /// Tasks not stored before.
    pub new: u64,
    /// Stored tasks whose content changed.
    pub changed: u64,
    /// Partition files rewritten (0 or 1 for one window).
    pub files_written: u64,
    /// Records kept in the rejects file (each once, however often it is re-listed).
    pub rejects: u64,
    /// Stored tasks a complete listing no longer had: marked `deleted_at`.
    pub deleted: u64,
    /// Stored tasks listed again under another create_time of their day: one row kept.
    pub moved: u64,
    /// Versions opened in `task_history/`.
    pub versions: u64,
}

impl WindowCounts {
    /// Adds another window's figures to these.
    pub fn add(&mut self, o: &WindowCounts) {
        self.leaves += o.leaves;
        self.repaged += o.repaged;
        self.unsettled += o.unsettled;
        self.tasks += o.tasks;
        self.new += o.new;
        self.changed += o.changed;
        self.files_written += o.files_written;
        self.rejects += o.rejects;
        self.deleted += o.deleted;
        self.moved += o.moved;
        self.versions += o.versions;
    }
}

/// Why a window's commit stopped: the sink, the state database, or a task that died.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    /// A background task of the commit failed (a panic is a bug; see `cli::end_on_panic`).
    #[error("{0}")]
    Task(String),
}

/// Where a window's commit writes, and the settings that decide what its checkpoint
/// records: borrowed from the pass's context once per window.
#[derive(Clone)]
pub struct Outputs {
    /// The data set's store (local or S3), which stages and replaces files.
    pub store: Arc<Store>,
    /// This run's rejects file.
    pub rejects: Arc<RejectLog>,
    /// The checkpoint database; a std mutex since every use is a short blocking call.
    pub state: Arc<Mutex<State>>,
    /// `sync.settle` in seconds: the newest part of a window that is never recorded done.
    pub settle: i64,
    /// `sync.give_up_after` in seconds: a part left behind this long is given up.
    pub give_up_after: i64,
}

impl Outputs {
    /// Runs `f` on the state database off the async threads.
    pub async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, CommitError> {
        with_state(&self.state, f).await
    }
}

/// Runs `f` on the state database off the async threads, holding its lock.
pub async fn with_state<T: Send + 'static>(
    state: &Arc<Mutex<State>>,
    f: impl FnOnce(&mut State) -> Result<T, StateError> + Send + 'static,
) -> Result<T, CommitError> {
    let state = state.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut state = state.lock().expect("never poisoned: a panic ends the process (cli::end_on_panic)");
        crate::crash::point("in_state");
        f(&mut state)
    })
    .await;
    Ok(joined.map_err(|e| CommitError::Task(format!("a state database task failed: {e}")))??)
}

/// Runs a file operation off the async threads (staging; publishing holds the partition's
/// lock in a task of its own, see [`publish::publish`]).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, CommitError> {
    let joined = tokio::task::spawn_blocking(f).await;
    Ok(joined.map_err(|e| CommitError::Task(format!("a background write task failed: {e}")))??)
}
