//! The commit point of one window: its data made durable first, then one SQLite
//! transaction that records it. Every window of every pass ends here, and nowhere else.
//!
//! # Order
//!
//! 1. The window's rejects are appended to this run's rejects file and fsynced.
//! 2. The partition's staged file is finished (footer, fsync), renamed over the partition
//!    file and its directory fsynced, by the protocol of `sink/writer.rs`; then the day's
//!    history derived from it, the same way (on object storage: the `tasks` PUT, then the
//!    history's). A window that changed nothing writes nothing here, unless the day's
//!    history lags its `tasks` file (a crash or a failed PUT between the two): then only the
//!    history, caught up.
//! 3. **The commit point**: one SQLite transaction records the window (the backfill job's
//!    interval, less any part left behind and the newest `sync.settle` before its pages
//!    were fetched, which still changes), the parts left behind with their reasons, and
//!    its tasks' states (unfinished ones to re-check, final ones to forget).
//! 4. The partition's lock, held since before its stored file was read (by this process
//!    and by the file lock across processes), is released: another writer of the
//!    partition reads the new file and records its states after these.
//! 5. For a forward window of an incremental pass committed whole, the cursor moves past
//!    the unbroken run of such windows (a transaction of its own; losing it only means a
//!    longer re-scan next time). A window with a part left behind moves it only once every
//!    such part is given up (left behind longer than `sync.give_up_after`, recorded in
//!    step 3): the frontier moves on, loudly, and never freezes the cursor for good.
//!
//! A crash before step 3 replays the window on the next run, and the merge makes that
//! replay change nothing already written; a crash after it loses nothing. So the state
//! database never records a window whose rows are not durable, and the cursor never
//! passes a window that is not recorded.

use std::sync::{Arc, Mutex};

use crate::commit::rewrite::{Outcome, PartitionMerge};
use crate::plan::{CursorTracker, Window};
use crate::source::decode::Reject;
use crate::state::{INCREMENTAL, RECHECK, RECONCILE, TaskChanges, WindowCheckpoint};
use crate::sync::context::{Context, PartitionHold};
use crate::sync::error::SyncError;

/// What completing a window records besides its tasks' states.
#[derive(Clone)]
pub enum Checkpoint {
    /// A completed interval of this backfill job.
    Backfill(Arc<str>),
    /// A forward window of an incremental pass: may move the cursor.
    Forward(Arc<Mutex<CursorTracker>>),
    /// A re-check of unfinished tasks: nothing but their states.
    Recheck,
    /// The ranges of one day that a reconciliation found to differ from the API's totals,
    /// re-listed together: nothing but their rows and states.
    Reconcile(Arc<[Window]>),
}

impl Checkpoint {
    /// The job whose progress (and windows left behind) this records.
    pub fn job_id(&self) -> &str {
        match self {
            Checkpoint::Backfill(job) => job,
            Checkpoint::Forward(_) => INCREMENTAL,
            Checkpoint::Recheck => RECHECK,
            Checkpoint::Reconcile(_) => RECONCILE,
        }
    }

    /// Whether the job keeps completed intervals (backfills; the incremental pass keeps a
    /// cursor instead).
    fn keeps_intervals(&self) -> bool {
        matches!(self, Checkpoint::Backfill(_))
    }

    /// The state database's record of this window with nothing committed: all of it left
    /// behind for `reason`, after a failure that belongs to the window alone.
    pub async fn leave_behind(&self, ctx: &Context, window: Window, reason: String) -> Result<(), SyncError> {
        let (job_id, keeps_intervals) = (self.job_id().to_string(), self.keeps_intervals());
        let now = (ctx.clock)();
        let give_up_after = ctx.cfg.sync.give_up_after.as_secs() as i64;
        let waiting = ctx
            .with_state(move |s| {
                let left = [(window, reason)];
                let tasks = TaskChanges::default();
                s.complete_window(&WindowCheckpoint {
                    job_id: &job_id,
                    keeps_intervals,
                    window,
                    left: &left,
                    tasks: &tasks,
                    now,
                    counts: None,
                    rejects: &[],
                    give_up_after,
                    settled_before: i64::MAX,
                })
            })
            .await?;
        self.past(ctx, window, waiting).await
    }

    /// Moves the cursor past a forward window once nothing of it holds the cursor back
    /// (`waiting` parts left behind and not given up): the frontier of a range that does
    /// not settle moves on after `sync.give_up_after`.
    async fn past(&self, ctx: &Context, window: Window, waiting: usize) -> Result<(), SyncError> {
        let Checkpoint::Forward(tracker) = self else { return Ok(()) };
        if waiting > 0 {
            return Ok(());
        }
        let cursor = tracker.lock().expect("never poisoned").done(window);
        if let Some(cursor) = cursor {
            ctx.with_state(move |s| s.advance_cursor(INCREMENTAL, cursor)).await?;
        }
        Ok(())
    }
}

/// One walked window, ready to be committed.
pub struct WindowCommit {
    /// The window walked, whole.
    pub window: Window,
    /// What its completion records.
    pub checkpoint: Checkpoint,
    /// Its tasks' states for the `unfinished` table.
    pub changes: TaskChanges,
    /// Records that could not become rows, kept with their reason, each with the minute
    /// of the day of the leaf it was listed in.
    pub rejects: Vec<(Reject, i64)>,
    /// When its pages were fetched (unix seconds).
    pub seen_at: i64,
    /// Its parts that did not settle, each with its reason: recorded in the same
    /// transaction, not committed; the cursor does not pass the window.
    pub left: Vec<(Window, String)>,
}

impl WindowCommit {
    /// Runs steps 1 to 5 above. `merge` is the partition's rewrite, `hold` its lock.
    pub async fn commit(self, ctx: &Context, merge: PartitionMerge, hold: PartitionHold) -> Result<Outcome, SyncError> {
        let WindowCommit { window, checkpoint, changes, rejects, seen_at, left } = self;
        let date = crate::time::utc_date(window.start);
        let keyed: Vec<(String, i64, Reject)> = rejects.into_iter().map(|(r, m)| (reject_key(&r), m, r)).collect();
        let keys: Vec<String> = keyed.iter().map(|(k, _, _)| k.clone()).collect();
        let d = date.clone();
        let known = ctx.with_state(move |s| s.rejects_known(&d, &keys)).await?;
        // A reject found again by a re-scan is neither appended nor counted twice.
        let (fresh, rejects): (Vec<(String, String, i64)>, Vec<Reject>) =
            keyed.into_iter().filter(|(k, _, _)| !known.contains(k)).map(|(k, m, r)| ((date.clone(), k, m), r)).unzip();
        let fresh_rejects = rejects.len();
        let (log, label) = (ctx.rejects.clone(), window.to_string());
        let appended = ctx.blocking(move || log.append(&label, seen_at, &rejects)).await?;
        if appended {
            ctx.rejects.publish().await.map_err(SyncError::Sink)?;
        }
        // On object storage the day's history is not fetched by a window that writes
        // nothing to a day whose tasks object this process saw the history derived from
        // as it is now: a quiet pass costs no extra GET.
        let (sink, stored) = (ctx.sink.clone(), merge.stored_version());
        let alongside = merge.writes_history_alongside();
        let skipped = !alongside && !merge.may_write() && sink.history_seen_current(&date, &stored);
        let history =
            if alongside || skipped { None } else { sink.history_base(&date).await.map_err(SyncError::Sink)? };
        sink.forget_history_current(&date);
        // The hold goes into the write: were this window cancelled now, the rename (or
        // the PUT, on a task of its own) would still finish under the lock.
        let (outcome, uploads, hold) =
            ctx.blocking(move || merge.finish(history).map(|(outcome, uploads)| (outcome, uploads, hold))).await?;
        let put = tokio::spawn(async move {
            let put = async {
                if let Some(upload) = uploads.tasks {
                    upload.put().await?;
                    crate::crash::point("between_tasks_and_history");
                }
                match uploads.history {
                    Some(upload) => upload.put().await,
                    None => Ok(()),
                }
            };
            (put.await, hold)
        });
        let (put, hold) = put.await.map_err(|e| SyncError::Setup(format!("a PUT task failed: {e}")))?;
        put.map_err(SyncError::Sink)?;
        // A skipped history is still derived from the unchanged tasks object.
        let history_of = outcome.history_of.clone().or_else(|| skipped.then_some(stored));
        if let (true, Some(version)) = (ctx.sink.keeps_history(), history_of) {
            ctx.sink.saw_history_current(&date, version);
        }

        crate::crash::point("before_checkpoint");
        let outcome_counts = outcome.counts.clone();
        let (job_id, keeps_intervals) = (checkpoint.job_id().to_string(), checkpoint.keeps_intervals());
        let settled_before = seen_at - ctx.cfg.sync.settle.as_secs() as i64;
        let give_up_after = ctx.cfg.sync.give_up_after.as_secs() as i64;
        let waiting = ctx
            .with_state(move |s| {
                let c = WindowCheckpoint {
                    job_id: &job_id,
                    keeps_intervals,
                    window,
                    left: &left,
                    tasks: &changes,
                    now: seen_at,
                    counts: outcome_counts.as_ref().map(|c| (date.as_str(), c)),
                    rejects: &fresh,
                    give_up_after,
                    settled_before,
                };
                s.complete_window(&c)
            })
            .await?;
        drop(hold);
        checkpoint.past(ctx, window, waiting).await?;
        Ok(Outcome { rejects: fresh_rejects, ..outcome })
    }
}

/// A reject's identity for counting it once: a hash of its raw text.
fn reject_key(r: &Reject) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(r.raw.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
