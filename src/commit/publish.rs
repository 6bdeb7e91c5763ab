//! The publish stage: a window's staged files become what readers see, `tasks/` first and
//! the day's history second (steps 4a and 4b of the protocol in `commit/mod.rs`). This is
//! the seam for another publisher: files replaced in place (locally by a rename, on object
//! storage by a conditional PUT: [`Store::replace`]) are the one there is; a table
//! format's log would be a second, taking the same [`StagedDay`] and returning the same
//! [`Published`], so that the walk, the merge and the checkpoint do not change.

use std::sync::Arc;

use super::CommitError;
use super::hold::PartitionHold;
use crate::sink::SinkError;
use crate::sink::store::{Base, Staged, Store, Target};

/// A window's files, written and fsynced in staging, not yet visible to readers: what the
/// stage step hands to this one. Dropping it unpublished removes the staged files.
pub struct StagedDay {
    /// The partition's UTC day (`YYYY-MM-DD`).
    pub date: String,
    /// The partition's new `tasks` file, and the stored version it replaces (its ETag is
    /// the PUT's condition on object storage). `None`: nothing changed.
    pub tasks: Option<(Staged, Base)>,
    /// The day's new history, and the stored version it replaces. `None`: none needed
    /// (history off, already current, or left as it is with a sentence).
    pub history: Option<(Staged, Base)>,
}

/// What publishing replaced: the proof the checkpoint step asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Whether the partition's `tasks` file was replaced (or created).
    pub tasks: bool,
    /// Whether the day's history was.
    pub history: bool,
}

/// Publishes `day` while `hold` keeps its partition, on a task of its own: were the window
/// cancelled now (a shutdown), the rename or PUT in flight still finishes under the lock.
/// The hold comes back for the checkpoint.
pub async fn publish(
    store: &Arc<Store>,
    day: StagedDay,
    hold: PartitionHold,
) -> Result<(Published, PartitionHold), CommitError> {
    let store = store.clone();
    let task = tokio::spawn(async move { (publish_files(&store, day).await, hold) });
    let (published, hold) = task.await.map_err(|e| CommitError::Task(format!("a publish task failed: {e}")))?;
    Ok((published?, hold))
}

/// The files of `day` replaced in order: `tasks/`, then its history, so that a history
/// never runs ahead of its day's `tasks` file.
pub(crate) async fn publish_files(store: &Store, day: StagedDay) -> Result<Published, SinkError> {
    let mut published = Published::default();
    if let Some((staged, base)) = day.tasks {
        crate::crash::point("after_staging_write");
        store.replace(&day.date, Target::Tasks, staged, &base).await?;
        published.tasks = true;
    }
    if let Some((staged, base)) = day.history {
        if published.tasks {
            crate::crash::point("between_tasks_and_history");
        }
        store.replace(&day.date, Target::History, staged, &base).await?;
        published.history = true;
    }
    Ok(published)
}
