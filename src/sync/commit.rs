//! The commit point of one window: its data made durable first, then one SQLite
//! transaction that records it. Every window of every pass ends here, and nowhere else.
//!
//! # Order
//!
//! 1. The window's rejects are appended to this run's rejects file and fsynced.
//! 2. The partition's staged file is finished (footer, fsync), renamed over the partition
//!    file and its directory fsynced, by the protocol of `sink/writer.rs`, under the
//!    partition's lock. A window that changed nothing writes nothing here.
//! 3. The partition's lock is released: the file is final, other windows may rewrite it.
//! 4. **The commit point**: one SQLite transaction records the window (the backfill job's
//!    interval) and its tasks' states (unfinished ones to re-check, final ones to forget).
//! 5. For a forward window of an incremental pass, the cursor moves past the unbroken run
//!    of committed windows (a transaction of its own; losing it only means a longer
//!    re-scan next time).
//!
//! A crash before step 4 replays the window on the next run, and the merge makes that
//! replay change nothing already written; a crash after it loses nothing. So the state
//! database never records a window whose rows are not durable, and the cursor never
//! passes a window that is not recorded.

use std::sync::{Arc, Mutex};

use super::SyncError;
use super::context::Context;
use crate::api::decode::Reject;
use crate::plan::{Progress, Window};
use crate::sink::partition::{Outcome, PartitionMerge};
use crate::state::{INCREMENTAL, TaskChanges};

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

/// One walked window, ready to be committed.
pub struct WindowCommit {
    /// The window walked, whole.
    pub window: Window,
    /// What its completion records.
    pub checkpoint: Checkpoint,
    /// Its tasks' states for the `unfinished` table.
    pub changes: TaskChanges,
    /// Records that could not become rows, kept with their reason.
    pub rejects: Vec<Reject>,
    /// When its pages were fetched (unix seconds).
    pub seen_at: i64,
}

impl WindowCommit {
    /// Runs steps 1 to 5 above. `merge` is the partition's rewrite, `held` its lock.
    pub async fn commit(
        self,
        ctx: &Context,
        merge: PartitionMerge,
        held: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Outcome, SyncError> {
        let WindowCommit { window, checkpoint, changes, rejects, seen_at } = self;
        let (log, label) = (ctx.rejects.clone(), window.to_string());
        ctx.blocking(move || log.append(&label, seen_at, &rejects)).await?;
        let outcome = ctx.blocking(move || merge.finish()).await?;
        drop(held);

        crate::crash::point("before_checkpoint");
        let job = match &checkpoint {
            Checkpoint::Backfill(job) => Some(job.to_string()),
            _ => None,
        };
        ctx.with_state(move |s| s.complete_window(job.as_deref(), window, &changes, seen_at)).await?;

        if let Checkpoint::Forward(progress) = &checkpoint {
            let cursor = progress.lock().expect("never poisoned").done(window);
            if let Some(cursor) = cursor {
                ctx.with_state(move |s| s.advance_cursor(INCREMENTAL, cursor)).await?;
            }
        }
        Ok(outcome)
    }
}
