//! Walking the windows of a pass: each window leaf by leaf, every leaf streamed into its
//! partition's rewrite, then handed to [`commit`](crate::commit) as one [`WindowCommit`].

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::SyncError;
use super::pass::{Pass, PassEvent};
use crate::commit::WindowCounts;
use crate::commit::rewrite::{Opening, Rewrite};
use crate::commit::window::{Checkpoint, WindowCommit};
use crate::plan::{LeftBehind, Window};
use crate::row::TaskRow;
use crate::source::walker::{self, Step};
use crate::state::{OBSERVATIONS, TaskChanges};
use crate::time::{micros_from_secs, utc_date};
use crate::transform::merge::Observed;

/// Windows walked at once. Each pages `api.concurrency` requests at a time, so two keep
/// the client busy while one merges and writes; each holds a leaf, a write batch and a
/// row group in memory, so memory grows with this and not with the range. Measured on a
/// 1M-task backfill (BENCHMARKS.md): four took 74 MB at the same speed as two at 53-60 MB.
const WINDOWS_IN_FLIGHT: usize = 2;

/// Times a window is walked when other writers keep replacing its partition's object;
/// after that it is left for the next pass.
const CONFLICT_TRIES: usize = 4;

/// Windows walked at once at most when the server is far away and request slots sit idle
/// anyway: small windows (a day of two leaves) leave most slots idle between a window's
/// probe and its leaves. Measured at 100k tasks, 50 ms away, concurrency 16 (BENCHMARKS.md).
const FAR_WINDOWS_IN_FLIGHT: usize = 6;

/// How often idle request slots are looked at, to start one more window.
const ADMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Leaves of a window that count as small. A large window keeps the request slots busy by
/// itself (its next leaf is paged ahead) and holds more in memory; measured at 1M tasks,
/// letting idle slots alone admit windows took 83 MB.
const SMALL_WINDOW_LEAVES: u64 = 2;

/// Processes windows concurrently (the client bounds requests in flight), and starts no
/// new window once `stop` is set. A window that fails for its own reasons is left for the
/// next pass and the others go on; a failure of the pass (credentials, disk, state
/// database, an unreachable API) stops it. Returns how many windows were committed whole.
///
/// [`WINDOWS_IN_FLIGHT`] run at once; beyond that, while the server is far away, the
/// windows are small ([`SMALL_WINDOW_LEAVES`], judged by the last one done) and request
/// slots are idle, one more starts every [`ADMIT_EVERY`], up to [`FAR_WINDOWS_IN_FLIGHT`].
/// Large windows never start extra ones, so memory stays what two of them need.
pub async fn run_windows(pass: &Pass<'_>, windows: Vec<(Window, Checkpoint)>) -> Result<usize, SyncError> {
    let base = pass.ctx.cfg.api.concurrency.clamp(1, WINDOWS_IN_FLIGHT);
    let client = &pass.ctx.client;
    let mut waiting = windows.into_iter().peekable();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut whole = 0;
    // Whether the last window ended in few leaves: small windows leave slots idle.
    let mut small = false;
    loop {
        let stop = pass.stop.load(Ordering::SeqCst);
        while !stop && running.len() < base {
            let Some((w, c)) = waiting.next() else { break };
            running.push(run_window(pass, w, c));
        }
        let may_add = !stop && waiting.peek().is_some() && running.len() < FAR_WINDOWS_IN_FLIGHT;
        if may_add && small && running.len() >= base && client.server_is_far() && client.idle_slots() > 0 {
            let (w, c) = waiting.next().expect("peeked");
            running.push(run_window(pass, w, c));
            tracing::debug!(
                windows = running.len(),
                "Starting one more window: the server is far and request slots idle"
            );
        }
        if running.is_empty() {
            return Ok(whole);
        }
        tokio::select! {
            done = running.next() => {
                let done = done.expect("not empty")?;
                whole += usize::from(done.whole);
                small = done.leaves <= SMALL_WINDOW_LEAVES;
            }
            () = tokio::time::sleep(ADMIT_EVERY), if may_add && small && client.server_is_far() => {}
        }
    }
}

/// How one window ended.
#[derive(Debug, Clone, Copy)]
struct Done {
    /// Committed whole: nothing of it left for the next pass.
    whole: bool,
    /// Leaves it was paged in: tells whether windows are small (see [`run_windows`]).
    leaves: u64,
}

/// One window, its own failures recorded as left behind.
async fn run_window(pass: &Pass<'_>, window: Window, checkpoint: Checkpoint) -> Result<Done, SyncError> {
    let mut result = process_window(pass, window, checkpoint.clone()).await;
    // Another writer replaced the partition's object after this window read it (object
    // storage with conditional PUTs): read it again, merge again, a few times.
    for _ in 1..CONFLICT_TRIES {
        let Err(SyncError::Sink(crate::sink::SinkError::Conflict { key })) = &result else { break };
        tracing::info!(window = %window, key = %key, "Another writer replaced the partition; merging this window again");
        pass.record(PassEvent::Conflict);
        result = process_window(pass, window, checkpoint.clone()).await;
    }
    match result {
        Ok(whole) => Ok(whole),
        Err(e) if e.is_window_failure() => {
            let left = LeftBehind { window, reason: e.to_string() };
            tracing::warn!(window = %window, reason = %left.reason, "Leaving a window for the next pass");
            checkpoint.leave_behind(&pass.ctx.outputs(), left.clone(), (pass.ctx.clock)()).await?;
            pass.record(PassEvent::WindowFailed(&left));
            Ok(Done { whole: false, leaves: 0 })
        }
        Err(e) => Err(e),
    }
}

/// One window: walk it leaf by leaf, streaming each leaf into its partition's rewrite;
/// then commit it (rejects, partition file, checkpoint, in that order). Parts that do not
/// settle are left behind in the same checkpoint; whole when there were none.
async fn process_window(pass: &Pass<'_>, window: Window, checkpoint: Checkpoint) -> Result<Done, SyncError> {
    let ctx = pass.ctx;
    let started = std::time::Instant::now();
    let date = utc_date(window.start);
    let hold = ctx.lock_partition(&date).await?;
    let seen_at = (ctx.clock)();
    let (mut merge, tracked) = open_rewrite(ctx, &date, window, &checkpoint, seen_at).await?;
    let mut walk = match &checkpoint {
        Checkpoint::Reconcile(ranges) => walker::Walk::over(&ctx.client, ranges, ctx.limits()),
        _ => walker::Walk::new(&ctx.client, window, ctx.limits()),
    };
    let mut tally = Tally::default();
    while let Some(step) = walk.next_step().await? {
        let leaf = match step {
            Step::Leaf(leaf) => leaf,
            Step::LeftBehind(part) => {
                tracing::warn!(window = %part.window, reason = %part.reason, "Leaving a range that does not settle for the next pass");
                match tally.left.last_mut() {
                    // Neighbours are one range to retry, under the first one's reason.
                    Some(last) if last.window.end == part.window.start => last.window.end = part.window.end,
                    _ => tally.left.push(part),
                }
                continue;
            }
        };
        tally.counts.leaves += 1;
        tally.counts.repaged += u64::from(leaf.repaged);
        tally.counts.tasks += leaf.rows.len() as u64;
        note_changes(&leaf.rows, &tracked, &mut tally.changes);
        let minute = leaf.window.start.rem_euclid(crate::time::DAY) / 60;
        tally.rejects.extend(leaf.rejects.into_iter().map(|r| (r, minute)));
        let (w, rows) = (leaf.window, leaf.rows);
        let (next, stale) = ctx.blocking(move || merge.add(w, rows).map(|stale| (merge, stale))).await?;
        merge = next;
        tally.stale.extend(stale);
    }
    let Tally { counts: walked, mut changes, rejects, left, stale } = tally;
    let ended = merge.end(may_mark_deleted(window, &checkpoint, &left));
    // The state database records only what the merge applied.
    if !stale.is_empty() {
        changes.unfinished.retain(|(id, _, _)| !stale.contains(id.as_str()));
        changes.finished.retain(|id| !stale.contains(id.as_str()));
    }
    let parts = left.clone();
    let whole = left.is_empty();
    let commit = WindowCommit { window, checkpoint, changes, rejects, seen_at, left };
    let mut counts = commit.commit(&ctx.outputs(), ended, hold).await?.counts;
    // The walk's own figures; the rest are the commit's.
    (counts.leaves, counts.repaged, counts.tasks) = (walked.leaves, walked.repaged, walked.tasks);
    counts.unsettled = walk.unsettled_splits();
    for part in &parts {
        pass.record(PassEvent::LeftBehind(part));
    }
    pass.record(PassEvent::Committed(&counts));
    tracing::info!(
        window = %window, partition = %date, tasks = counts.tasks, new = counts.new, changed = counts.changed,
        file_written = counts.files_written > 0, rejects = counts.rejects, leaves = counts.leaves, whole,
        ms = started.elapsed().as_millis() as u64, "Window done"
    );
    Ok(Done { whole, leaves: counts.leaves })
}

/// The partition of `date` opened for `window`, stamped with an observation numbered above
/// what its stored file holds, and the window's tasks the state database tracks.
async fn open_rewrite(
    ctx: &crate::sync::Context,
    date: &str,
    window: Window,
    checkpoint: &Checkpoint,
    seen_at: i64,
) -> Result<(Rewrite, HashSet<String>), SyncError> {
    let (sink, d) = (ctx.sink.clone(), date.to_string());
    let base = sink.base(&d).await.map_err(SyncError::Sink)?;
    let mut opening = ctx.blocking(move || Opening::open(sink, &d, base)).await?;
    // A day new to the data set gets its first history written beside its tasks file.
    if ctx.sink.keeps_history() && !opening.has_stored_file() {
        let history = ctx.sink.history_base(date).await.map_err(SyncError::Sink)?.expect("history is kept");
        opening = opening.with_history_alongside(history).map_err(SyncError::Sink)?;
    }
    if matches!(checkpoint, Checkpoint::Reconcile(_)) {
        opening = opening.recount_if_unchanged();
    }
    // Numbered above what the stored file holds, so that newer always wins even when the
    // state database is older than the data set (restored, lost, or another host's).
    let floor = opening.stored_max_seq();
    let (tracked, seq) =
        ctx.with_state(move |s| Ok((s.unfinished_ids(window)?, s.next_sequence_above(OBSERVATIONS, floor)?))).await?;
    let merge = opening.observe_as(Observed { at: micros_from_secs(seen_at), seq });
    Ok((merge, tracked))
}

/// Whether stored tasks that a window's listings no longer had may be marked deleted: when
/// it listed its whole day, or the parts of a day that a reconciliation found to differ
/// (its counts show the rest matches), and left nothing behind. A task missing from part of
/// a day may have moved to another part (a corrected create_time): it is left for the
/// reconciliation to tell.
fn may_mark_deleted(window: Window, checkpoint: &Checkpoint, left: &[LeftBehind]) -> bool {
    let whole_day = window.start.rem_euclid(crate::time::DAY) == 0 && window.width() == crate::time::DAY;
    left.is_empty() && (whole_day || matches!(checkpoint, Checkpoint::Reconcile(_)))
}

/// What a window gathers while its leaves are walked.
#[derive(Default)]
struct Tally {
    /// Its figures for the pass summary.
    counts: WindowCounts,
    /// Its tasks' states for the checkpoint.
    changes: TaskChanges,
    /// Its undecodable records, with the minute of the day of the leaf each was in.
    rejects: Vec<(crate::source::decode::Reject, i64)>,
    /// Its parts that did not settle, with their reasons.
    left: Vec<LeftBehind>,
    /// Tasks a newer observation (another process's) had already stored.
    stale: HashSet<crate::row::Text>,
}

/// Which tasks to keep looking at (unfinished) and which to stop looking at: final tasks
/// that the state database still tracks (`tracked`), and only those, so that a window of
/// finished tasks costs the checkpoint nothing per task.
fn note_changes(rows: &[TaskRow], tracked: &HashSet<String>, changes: &mut TaskChanges) {
    for r in rows {
        if !r.is_final() {
            changes.unfinished.push((r.task_id.to_string(), r.create_time, r.status.as_ref().map(ToString::to_string)));
        } else if tracked.contains(r.task_id.as_str()) {
            changes.finished.push(r.task_id.to_string());
        }
    }
}
