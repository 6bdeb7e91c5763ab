//! Jobs, their completed intervals, the windows left behind and the cursors: what a
//! window's checkpoint records, and what a pass plans from.

use rusqlite::{OptionalExtension, Transaction, params};

use super::migrations::{COUNTS_SINCE, LEFT_BEHIND_SINCE};
use super::{State, StateError, counts};
use crate::plan::{Window, coalesce};

/// A range left behind as the state database keeps it: the [`crate::plan::LeftBehind`] of
/// its last attempt, with its job, its age and how often it was tried.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeftBehindRecord {
    /// The backfill job, [`INCREMENTAL`] or [`RECHECK`].
    pub job_id: String,
    /// The range not committed.
    pub start: i64,
    /// Its end (exclusive).
    pub end: i64,
    /// Why, in a sentence (the last attempt's).
    pub reason: String,
    /// When it was first left behind (unix seconds).
    pub first_at: i64,
    /// When it was last attempted.
    pub last_at: i64,
    /// How many passes have tried it.
    pub attempts: i64,
    /// When it was given up (left behind longer than `sync.give_up_after`): the cursor
    /// moved on past it and passes no longer retry it; reconciliations still re-count it.
    pub given_up_at: Option<i64>,
}

/// A backfill job and how much of its range is done, for `status` and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    /// Its id (see `sync::backfill_job_id`).
    pub job_id: String,
    /// Its range.
    pub window: Window,
    /// Seconds of the range recorded done.
    pub done_s: i64,
    /// When all of it was done, if it was.
    pub finished_at: Option<i64>,
}

impl JobProgress {
    /// The share of the range done, in percent with one decimal.
    pub fn done_percent(&self) -> f64 {
        (1000.0 * self.done_s as f64 / (self.window.end - self.window.start).max(1) as f64).round() / 10.0
    }
}

/// What one checkpoint records about the tasks of a window.
#[derive(Debug, Default)]
pub struct TaskChanges {
    /// (task_id, create_time, status) of tasks seen unfinished: keep looking at them.
    pub unfinished: Vec<(String, i64, Option<String>)>,
    /// Task ids seen final: stop looking at them.
    pub finished: Vec<String>,
}

/// What one window's checkpoint records, in one transaction.
#[derive(Debug)]
pub struct WindowCheckpoint<'a> {
    /// The backfill job, [`INCREMENTAL`] or [`RECHECK`]: whose progress this is.
    pub job_id: &'a str,
    /// Whether the job keeps completed intervals (backfills do; the incremental pass
    /// keeps a cursor instead).
    pub keeps_intervals: bool,
    /// The window walked.
    pub window: Window,
    /// Parts of it not committed, each with its reason: left for the next pass.
    pub left: &'a [crate::plan::LeftBehind],
    /// The states of the tasks it committed.
    pub tasks: &'a TaskChanges,
    /// When its pages were fetched (unix seconds).
    pub now: i64,
    /// The partition's counts as written (`None` when its file did not change).
    pub counts: Option<(&'a str, &'a crate::state::counts::DayCounts)>,
    /// The window's rejects: (partition date, identity hash, minute of the day), recorded
    /// once each.
    pub rejects: &'a [(String, String, i64)],
    /// `sync.give_up_after` in seconds: a part left behind for longer is given up.
    pub give_up_after: i64,
    /// A backfill's interval is recorded done only before this instant: the newest
    /// `sync.settle` at the time of fetching still changes (`i64::MAX`: all of it).
    pub settled_before: i64,
}

impl State {
    /// Creates the job if new; an existing one keeps its progress.
    pub fn ensure_job(&self, job_id: &str, kind: &str, window: Window, now: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO jobs (job_id, kind, from_ts, to_ts, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(job_id) DO NOTHING",
                params![job_id, kind, window.start, window.end, now],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The job's completed intervals, coalesced and sorted.
    pub fn done_intervals(&self, job_id: &str) -> Result<Vec<(i64, i64)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT start_ts, end_ts FROM job_intervals WHERE job_id = ?1 ORDER BY start_ts")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The commit point: records what of `c.window` was committed and what was left
    /// behind, and its tasks' states, in one transaction. Call only once the window's
    /// partition file and rejects are durable (see `commit/mod.rs`). The incremental
    /// cursor moves separately, through [`State::advance_cursor`].
    #[inline(never)] // a stage of bench/profile.sh
    /// Returns how many of its parts left behind still hold the cursor back (those not
    /// given up).
    pub fn complete_window(&mut self, c: &WindowCheckpoint<'_>) -> Result<usize, StateError> {
        self.complete_window_tx(c).map_err(|e| self.err(e))
    }

    fn complete_window_tx(&mut self, c: &WindowCheckpoint<'_>) -> rusqlite::Result<usize> {
        // Immediate: another process may write too, and a deferred transaction that reads
        // first would fail at once instead of waiting for the busy timeout.
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let left: Vec<(i64, i64)> = c.left.iter().map(|l| (l.window.start, l.window.end)).collect();
        if c.keeps_intervals {
            record_intervals(&tx, c, &left)?;
        }
        record_left_behind(&tx, c, &left)?;
        record_tasks(&tx, c)?;
        counts::record(&tx, c.counts, c.rejects, c.now)?;
        let parts: Vec<Window> = c.left.iter().map(|l| l.window).collect();
        let waiting = counts::give_up(&tx, c.job_id, &parts, c.now, c.give_up_after)?;
        tx.commit()?;
        Ok(waiting)
    }

    /// The windows left behind, of one job or of all, oldest range first.
    pub fn left_behind(&self, job_id: Option<&str>) -> Result<Vec<LeftBehindRecord>, StateError> {
        if self.version < LEFT_BEHIND_SINCE {
            return Ok(Vec::new());
        }
        let query = || -> rusqlite::Result<Vec<LeftBehindRecord>> {
            let given_up = if self.version >= COUNTS_SINCE { "given_up_at" } else { "NULL" };
            let mut stmt = self.conn.prepare(&format!(
                "SELECT job_id, start_ts, end_ts, reason, first_at, last_at, attempts, {given_up} FROM left_behind
                 WHERE ?1 IS NULL OR job_id = ?1 ORDER BY start_ts, job_id"
            ))?;
            let rows = stmt.query_map([job_id], |r| {
                Ok(LeftBehindRecord {
                    job_id: r.get(0)?,
                    start: r.get(1)?,
                    end: r.get(2)?,
                    reason: r.get(3)?,
                    first_at: r.get(4)?,
                    last_at: r.get(5)?,
                    attempts: r.get(6)?,
                    given_up_at: r.get(7)?,
                })
            })?;
            rows.collect()
        };
        query().map_err(|e| self.err(e))
    }

    /// The named cursor, if set.
    pub fn cursor(&self, name: &str) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row("SELECT ts FROM cursors WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Moves the named cursor forward to `ts` (never back). Call only once every window
    /// before `ts` has been checkpointed.
    pub fn advance_cursor(&self, name: &str, ts: i64) -> Result<(), StateError> {
        self.conn
            .execute("INSERT INTO cursors (name, ts) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET ts = max(ts, excluded.ts)", params![name, ts])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Pulls a cursor back to `ts` if it is past it (a cursor planned by a clock that was
    /// ahead of the API's).
    pub fn pull_back_cursor(&self, name: &str, ts: i64) -> Result<(), StateError> {
        self.conn
            .execute("UPDATE cursors SET ts = ?2 WHERE name = ?1 AND ts > ?2", params![name, ts])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks a job finished (all of its range done).
    pub fn finish_job(&self, job_id: &str, now: i64) -> Result<(), StateError> {
        self.conn
            .execute("UPDATE jobs SET finished_at = ?2 WHERE job_id = ?1", params![job_id, now])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every job with its progress, the newest first.
    pub fn jobs(&self) -> Result<Vec<JobProgress>, StateError> {
        let query = || -> rusqlite::Result<Vec<JobProgress>> {
            let mut stmt = self.conn.prepare(
                "SELECT j.job_id, j.from_ts, j.to_ts, j.finished_at, coalesce(sum(i.end_ts - i.start_ts), 0)
                 FROM jobs j LEFT JOIN job_intervals i ON i.job_id = j.job_id
                 GROUP BY j.job_id ORDER BY j.created_at DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(JobProgress {
                    job_id: r.get(0)?,
                    window: Window::new(r.get(1)?, r.get(2)?),
                    finished_at: r.get(3)?,
                    done_s: r.get(4)?,
                })
            })?;
            rows.collect()
        };
        query().map_err(|e| self.err(e))
    }
}

/// Adds the committed part of the window (before `settled_before`, minus what was left
/// behind) to the job's completed intervals, coalesced.
fn record_intervals(tx: &Transaction<'_>, c: &WindowCheckpoint<'_>, left: &[(i64, i64)]) -> rusqlite::Result<()> {
    let mut intervals: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare("SELECT start_ts, end_ts FROM job_intervals WHERE job_id = ?1")?;
        stmt.query_map([c.job_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let end = c.window.end.min(c.settled_before.max(c.window.start));
    intervals.extend(crate::plan::subtract(c.window.start, end, left));
    tx.execute("DELETE FROM job_intervals WHERE job_id = ?1", [c.job_id])?;
    for (s, e) in coalesce(intervals) {
        tx.execute(
            "INSERT INTO job_intervals (job_id, start_ts, end_ts) VALUES (?1, ?2, ?3)",
            params![c.job_id, s, e],
        )?;
    }
    Ok(())
}

/// Records the window's parts left behind, clearing those of earlier passes now committed.
fn record_left_behind(tx: &Transaction<'_>, c: &WindowCheckpoint<'_>, left: &[(i64, i64)]) -> rusqlite::Result<()> {
    // A part left behind again keeps the age of what it replaces: its bounds may move
    // from pass to pass (a window ending at "now", leaves split by a moving total), and
    // `sync.give_up_after` counts from the first time any of it was left behind.
    let mut first_at: Vec<Option<i64>> = Vec::with_capacity(c.left.len());
    for crate::plan::LeftBehind { window: w, .. } in c.left {
        first_at.push(tx.query_row(
            "SELECT min(first_at) FROM left_behind WHERE job_id = ?1 AND start_ts < ?3 AND end_ts > ?2",
            params![c.job_id, w.start, w.end],
            |r| r.get(0),
        )?);
    }
    // Parts left behind by an earlier pass and committed now are cleared; parts left
    // behind again count one more attempt.
    let stale: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT start_ts, end_ts FROM left_behind WHERE job_id = ?1 AND start_ts >= ?2 AND end_ts <= ?3",
        )?;
        let rows = stmt.query_map(params![c.job_id, c.window.start, c.window.end], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()?.into_iter().filter(|w| !left.contains(w)).collect()
    };
    for (s, e) in stale {
        tx.execute(
            "DELETE FROM left_behind WHERE job_id = ?1 AND start_ts = ?2 AND end_ts = ?3",
            params![c.job_id, s, e],
        )?;
    }
    for (crate::plan::LeftBehind { window: w, reason }, first) in c.left.iter().zip(first_at) {
        tx.execute(
            "INSERT INTO left_behind (job_id, start_ts, end_ts, reason, first_at, last_at, attempts)
             VALUES (?1, ?2, ?3, ?4, ?6, ?5, 1)
             ON CONFLICT(job_id, start_ts, end_ts) DO UPDATE SET
               reason = excluded.reason, last_at = excluded.last_at, attempts = attempts + 1",
            params![c.job_id, w.start, w.end, reason, c.now, first.unwrap_or(c.now).min(c.now)],
        )?;
    }
    Ok(())
}

/// Keeps the tasks seen unfinished for re-checks and drops those seen final.
fn record_tasks(tx: &Transaction<'_>, c: &WindowCheckpoint<'_>) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare(
        "INSERT INTO unfinished (task_id, create_time, status, first_seen_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT(task_id) DO UPDATE SET status = excluded.status, last_seen_at = excluded.last_seen_at",
    )?;
    for (id, create_time, status) in &c.tasks.unfinished {
        upsert.execute(params![id, create_time, status, c.now])?;
    }
    let mut delete = tx.prepare("DELETE FROM unfinished WHERE task_id = ?1")?;
    for id in &c.tasks.finished {
        delete.execute([id])?;
    }
    Ok(())
}
