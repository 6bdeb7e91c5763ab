//! Walking the windows of a pass: each window leaf by leaf, every leaf streamed into its
//! partition's rewrite, then handed to [`commit`](super::commit) as one [`WindowCommit`].

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use futures::{StreamExt, TryStreamExt};

pub use super::commit::Checkpoint;
use super::commit::WindowCommit;
use super::summary::WindowCounts;
use super::{Pass, SyncError, walker};
use crate::plan::Window;
use crate::row::TaskRow;
use crate::sink::partition::PartitionMerge;
use crate::state::TaskChanges;
use crate::time::{micros_from_secs, utc_date};

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
/// then commit it (rejects, partition file, checkpoint, in that order).
async fn process_window(pass: &Pass<'_>, window: Window, checkpoint: Checkpoint) -> Result<(), SyncError> {
    let ctx = pass.ctx;
    let started = std::time::Instant::now();
    let date = utc_date(window.start);
    let held = ctx.partition_lock(&date).lock_owned().await;
    let seen_at = (ctx.clock)();
    let tracked = ctx.with_state(move |s| s.unfinished_ids(window)).await?;
    let (sink, d) = (ctx.sink.clone(), date.clone());
    let mut merge = ctx.blocking(move || PartitionMerge::open(sink, &d, micros_from_secs(seen_at))).await?;
    let mut walk = walker::Walk::new(&ctx.client, window, ctx.limits());
    let mut tally = Tally::default();
    while let Some(leaf) = walk.next_leaf().await? {
        tally.counts.leaves += 1;
        tally.counts.repaged += u64::from(leaf.repaged);
        tally.counts.tasks += leaf.rows.len() as u64;
        note_changes(&leaf.rows, &tracked, &mut tally.changes);
        tally.rejects.extend(leaf.rejects);
        let (w, rows) = (leaf.window, leaf.rows);
        merge = ctx.blocking(move || merge.add(w, rows).map(|()| merge)).await?;
    }
    let Tally { mut counts, changes, rejects } = tally;
    counts.rejects = rejects.len() as u64;
    let commit = WindowCommit { window, checkpoint, changes, rejects, seen_at };
    let outcome = commit.commit(ctx, merge, held).await?;
    (counts.new, counts.changed, counts.file_written) = (outcome.new as u64, outcome.changed as u64, outcome.written);
    pass.summary.window_done(&counts);
    tracing::info!(
        window = %window, partition = %date, tasks = counts.tasks, new = counts.new, changed = counts.changed,
        file_written = counts.file_written, rejects = counts.rejects, leaves = counts.leaves,
        ms = started.elapsed().as_millis() as u64, "Window done"
    );
    Ok(())
}

/// What a window gathers while its leaves are walked.
#[derive(Default)]
struct Tally {
    /// Its figures for the pass summary.
    counts: WindowCounts,
    /// Its tasks' states for the checkpoint.
    changes: TaskChanges,
    /// Its undecodable records.
    rejects: Vec<crate::api::decode::Reject>,
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
