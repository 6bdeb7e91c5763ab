//! The publish stage: a window's staged files become what readers see, `tasks/` first and
//! the day's history second (steps 4a and 4b of the protocol in `commit/mod.rs`). This is
//! the seam for another publisher: files replaced in place (locally by a rename, on object
//! storage by a conditional PUT: [`Store::rename_into_place`], [`put`]) are the one there is; a table
//! format's log would be a second, taking the same [`StagedDay`] and returning the same
//! [`Published`], so that the walk, the merge and the checkpoint do not change.

use std::sync::Arc;

use super::CommitError;
use super::hold::PartitionHold;
use crate::sink::SinkError;
use crate::sink::store::remote::Remote;
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
/// Locally that task is a blocking one, which the runtime lets finish even when it shuts
/// down. The hold comes back for the checkpoint.
pub async fn publish(
    store: &Arc<Store>,
    day: StagedDay,
    hold: PartitionHold,
) -> Result<(Published, PartitionHold), CommitError> {
    let store = store.clone();
    let (published, hold) = if let Some(remote) = store.remote().cloned() {
        let task = tokio::spawn(async move { (publish_files(&remote, day).await, hold) });
        task.await.map_err(|e| CommitError::Task(format!("a publish task failed: {e}")))?
    } else {
        let task = tokio::task::spawn_blocking(move || (publish_local(&store, day), hold));
        task.await.map_err(|e| CommitError::Task(format!("a publish task failed: {e}")))?
    };
    Ok((published?, hold))
}

/// The files of `day` put in order on object storage:
/// `tasks/`, then its history, so that a history never runs ahead of its day's `tasks` file.
async fn publish_files(remote: &Remote, day: StagedDay) -> Result<Published, SinkError> {
    let mut published = Published::default();
    if let Some((staged, base)) = day.tasks {
        crate::crash::point("after_staging_write");
        put(remote, &day.date, Target::Tasks, &staged, &base).await?;
        published.tasks = true;
    }
    between(&published, day.history.is_some());
    if let Some((staged, base)) = day.history {
        put(remote, &day.date, Target::History, &staged, &base).await?;
        published.history = true;
    }
    Ok(published)
}

/// One conditional PUT of a staged file to the day's `target` key, on `base`'s ETag; its
/// crash point once the store answered. The staged file goes when its `Staged` drops.
async fn put(remote: &Remote, date: &str, target: Target, staged: &Staged, base: &Base) -> Result<(), SinkError> {
    remote.upload(&target.key(date), &staged.file, base.etag.as_deref()).await?;
    crate::crash::point(target.crash_point());
    Ok(())
}

/// [`publish_files`] for local files, blocking: the same order, by renames.
pub(crate) fn publish_local(store: &Store, day: StagedDay) -> Result<Published, SinkError> {
    let mut published = Published::default();
    if let Some((staged, _)) = day.tasks {
        crate::crash::point("after_staging_write");
        store.rename_into_place(&day.date, Target::Tasks, staged)?;
        published.tasks = true;
    }
    between(&published, day.history.is_some());
    if let Some((staged, _)) = day.history {
        store.rename_into_place(&day.date, Target::History, staged)?;
        published.history = true;
    }
    Ok(published)
}

/// The crash point between the two files: reached after a `tasks` file was published, and
/// before a history is, whichever of the two the window has.
fn between(published: &Published, history_follows: bool) {
    if published.tasks || history_follows {
        crate::crash::point("between_tasks_and_history");
    }
}
