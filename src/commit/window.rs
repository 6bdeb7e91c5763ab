//! One window through the three stages (the protocol in `commit/mod.rs`): its rejects and
//! files staged, its files published, then the checkpoint, the commit point. Every window of
//! every pass ends here, and nowhere else; so does a window left behind whole.

use std::sync::{Arc, Mutex};

use super::hold::PartitionHold;
use super::publish::{StagedDay, publish};
use super::rewrite::{Ended, Outcome};
use super::{CommitError, Outputs, blocking};
use crate::plan::{CursorTracker, LeftBehind, Window};
use crate::source::decode::Reject;
use crate::state::{INCREMENTAL, RECHECK, RECONCILE, TaskChanges, WindowCheckpoint};

/// What completing a window records besides its tasks' states: which job it belongs to.
#[derive(Clone)]
pub enum Checkpoint {
    /// A completed interval of this backfill job.
    Backfill(Arc<str>),
    /// A window of an incremental pass past the cursor's lookback: may move the cursor.
    Incremental(Arc<Mutex<CursorTracker>>),
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
            Checkpoint::Incremental(_) => INCREMENTAL,
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
    pub async fn leave_behind(&self, out: &Outputs, left: LeftBehind, now: i64) -> Result<(), CommitError> {
        let (job_id, keeps_intervals, give_up_after) =
            (self.job_id().to_string(), self.keeps_intervals(), out.give_up_after);
        let window = left.window;
        let waiting = out
            .with_state(move |s| {
                s.complete_window(&WindowCheckpoint {
                    job_id: &job_id,
                    keeps_intervals,
                    window,
                    left: &[left],
                    tasks: &TaskChanges::default(),
                    now,
                    counts: None,
                    rejects: &[],
                    give_up_after,
                    settled_before: i64::MAX,
                })
            })
            .await?;
        self.past(out, window, waiting).await
    }

    /// Moves the cursor past an incremental window once nothing of it holds the cursor
    /// back (`waiting` parts left behind and not given up): the frontier of a range that
    /// does not settle moves on after `sync.give_up_after`.
    async fn past(&self, out: &Outputs, window: Window, waiting: usize) -> Result<(), CommitError> {
        let Checkpoint::Incremental(tracker) = self else { return Ok(()) };
        if waiting > 0 {
            return Ok(());
        }
        let cursor = tracker.lock().expect("never poisoned").done(window);
        if let Some(cursor) = cursor {
            out.with_state(move |s| s.advance_cursor(INCREMENTAL, cursor)).await?;
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
    /// Its parts that did not settle: recorded in the same transaction, not committed;
    /// the cursor does not pass the window.
    pub left: Vec<LeftBehind>,
}

impl WindowCommit {
    /// Stages, publishes and checkpoints the window (steps 2 to 6 of the protocol).
    /// `rewrite` is its partition's rewrite, ended; `hold` its locks, released after the
    /// checkpoint.
    pub async fn commit(self, out: &Outputs, rewrite: Ended, hold: PartitionHold) -> Result<Outcome, CommitError> {
        let WindowCommit { window, checkpoint, changes, rejects, seen_at, left } = self;
        let date = crate::time::utc_date(window.start);
        let fresh = stage_rejects(out, &date, &window.to_string(), seen_at, rejects).await?;
        let (outcome, staged) = stage_files(out, &date, rewrite).await?;
        let (_published, hold) = publish(&out.store, staged, hold).await?;
        if let (true, Some(version)) = (out.store.keeps_history(), outcome.history_of.clone()) {
            out.store.saw_history_current(&date, version);
        }
        crate::crash::point("before_checkpoint");
        let (job_id, keeps_intervals) = (checkpoint.job_id().to_string(), checkpoint.keeps_intervals());
        let (settled_before, give_up_after) = (seen_at - out.settle, out.give_up_after);
        let day = outcome.day.clone();
        let keys: Vec<(String, String, i64)> = fresh.iter().map(|(k, m)| (date.clone(), k.clone(), *m)).collect();
        let waiting = out
            .with_state(move |s| {
                s.complete_window(&WindowCheckpoint {
                    job_id: &job_id,
                    keeps_intervals,
                    window,
                    left: &left,
                    tasks: &changes,
                    now: seen_at,
                    counts: day.as_ref().map(|c| (date.as_str(), c)),
                    rejects: &keys,
                    give_up_after,
                    settled_before,
                })
            })
            .await?;
        drop(hold);
        checkpoint.past(out, window, waiting).await?;
        let mut outcome = outcome;
        outcome.counts.rejects = fresh.len() as u64;
        Ok(outcome)
    }
}

/// Appends the rejects not seen before to this run's rejects file and fsyncs it (and
/// publishes it on object storage); returns their keys and minutes, which the checkpoint
/// records so that a re-scan neither appends nor counts them twice.
async fn stage_rejects(
    out: &Outputs,
    date: &str,
    window: &str,
    seen_at: i64,
    rejects: Vec<(Reject, i64)>,
) -> Result<Vec<(String, i64)>, CommitError> {
    let keyed: Vec<(String, i64, Reject)> = rejects.into_iter().map(|(r, m)| (reject_key(&r), m, r)).collect();
    let (keys, d): (Vec<String>, String) = (keyed.iter().map(|(k, _, _)| k.clone()).collect(), date.to_string());
    let known = out.with_state(move |s| s.rejects_known(&d, &keys)).await?;
    let (fresh, rejects): (Vec<(String, i64)>, Vec<Reject>) =
        keyed.into_iter().filter(|(k, _, _)| !known.contains(k)).map(|(k, m, r)| ((k, m), r)).unzip();
    let (log, label) = (out.rejects.clone(), window.to_string());
    let appended = blocking(move || log.append(&label, seen_at, &rejects)).await?;
    if appended {
        out.rejects.publish().await?;
    }
    Ok(fresh)
}

/// The stage step's end for the files: the day's history looked at (or not) and the
/// rewrite finished into staged files.
async fn stage_files(out: &Outputs, date: &str, rewrite: Ended) -> Result<(Outcome, StagedDay), CommitError> {
    // On object storage the day's history is not fetched by a window that writes nothing
    // to a day whose tasks object this process saw the history derived from as it is now:
    // a quiet pass costs no extra GET.
    let (store, stored) = (out.store.clone(), rewrite.stored_version());
    let alongside = rewrite.writes_history_alongside();
    let skipped = !alongside && !rewrite.may_write() && store.history_seen_current(date, &stored);
    let history = if alongside || skipped { None } else { store.history_base(date).await? };
    store.forget_history_current(date);
    let (mut outcome, staged) = blocking(move || rewrite.finish(history)).await?;
    // A skipped history is still derived from the unchanged tasks object.
    if skipped && outcome.history_of.is_none() {
        outcome.history_of = Some(stored);
    }
    Ok((outcome, staged))
}

/// A reject's identity for counting it once: a hash of its raw text.
fn reject_key(r: &Reject) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(r.raw.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
