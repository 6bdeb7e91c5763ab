//! The record of runs, the settings pinned at first use and the sequences shared by every
//! process on the database.

use rusqlite::{OptionalExtension, params};

use super::migrations::RUN_PID_SINCE;
use super::{State, StateError};

/// One pass as the `runs` table recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// "incremental" or "backfill".
    pub kind: String,
    /// When it started (unix seconds).
    pub started_at: i64,
    /// When it ended; `None` while running, or when its process died.
    pub finished_at: Option<i64>,
    /// Its totals as JSON (`sync::summary::Totals`).
    pub summary: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The process that ran it (`None` in a database older than [`RUN_PID_SINCE`]): tells
    /// a pass still running from one whose process is gone.
    pub pid: Option<u32>,
}

impl State {
    /// Records the start of a run (with this process's id); returns its id.
    pub fn start_run(&self, kind: &str, now: i64) -> Result<i64, StateError> {
        self.conn
            .execute(
                "INSERT INTO runs (kind, started_at, pid) VALUES (?1, ?2, ?3)",
                params![kind, now, std::process::id()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the end of a run with its summary (JSON) and error, if any.
    pub fn finish_run(&self, run_id: i64, now: i64, summary: &str, error: Option<&str>) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, summary = ?3, error = ?4 WHERE run_id = ?1",
                params![run_id, now, summary, error],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The value a setting that decides a task's identity or partition had at first use,
    /// recording `value` if it is the first; `Err` names both values when they differ.
    pub fn pin_setting(&self, key: &str, value: &str, now: i64) -> Result<Result<(), String>, StateError> {
        let query = || -> rusqlite::Result<Option<(String, i64)>> {
            self.conn.execute(
                "INSERT INTO settings (key, value, set_at) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO NOTHING",
                params![key, value, now],
            )?;
            self.conn
                .query_row("SELECT value, set_at FROM settings WHERE key = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        };
        match query().map_err(|e| self.err(e))? {
            Some((pinned, set_at)) if pinned != value => {
                Ok(Err(format!("{pinned} (recorded {})", crate::time::show(set_at))))
            }
            _ => Ok(Ok(())),
        }
    }

    /// The next number of a sequence shared by every process on this database: strictly
    /// greater than any it returned before, whatever the wall clock does.
    pub fn next_sequence(&self, name: &str) -> Result<i64, StateError> {
        self.conn
            .query_row(
                "INSERT INTO sequences (name, value) VALUES (?1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                [name],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The next number of a sequence, also above `floor`: the newest number already in the
    /// data set, which a restored, deleted or second state database has never seen.
    pub fn next_sequence_above(&self, name: &str, floor: i64) -> Result<i64, StateError> {
        self.conn
            .query_row(
                "INSERT INTO sequences (name, value) VALUES (?1, max(1, ?2 + 1))
                 ON CONFLICT(name) DO UPDATE SET value = max(value + 1, ?2 + 1) RETURNING value",
                params![name, floor],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The last `per_process` passes of each process among the last 50 passes, the newest
    /// first: a backfill's one long pass stays in view beside the service's pass every
    /// five minutes. A database without `runs.pid` gives its last `per_process` passes.
    pub fn recent_runs(&self, per_process: usize) -> Result<Vec<RunRecord>, StateError> {
        let sql = if self.version >= RUN_PID_SINCE {
            "SELECT kind, started_at, finished_at, summary, error, pid FROM (
               SELECT *, row_number() OVER (PARTITION BY pid ORDER BY run_id DESC) AS nth FROM runs
               WHERE pid IN (SELECT pid FROM runs ORDER BY run_id DESC LIMIT 50)
             ) WHERE nth <= ?1 ORDER BY run_id DESC"
        } else {
            "SELECT kind, started_at, finished_at, summary, error, NULL FROM runs ORDER BY run_id DESC LIMIT ?1"
        };
        let query = || -> rusqlite::Result<Vec<RunRecord>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([per_process as i64], |r| {
                Ok(RunRecord {
                    kind: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    summary: r.get(3)?,
                    error: r.get(4)?,
                    pid: r.get(5)?,
                })
            })?;
            rows.collect()
        };
        query().map_err(|e| self.err(e))
    }

    /// When the last pass that did not fail ended.
    pub fn last_success_at(&self) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row("SELECT max(finished_at) FROM runs WHERE finished_at IS NOT NULL AND error IS NULL", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    /// Records kept in `_rejects/`, summed over the passes that recorded them.
    pub fn rejects_total(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("SELECT coalesce(sum(json_extract(summary, '$.rejects')), 0) FROM runs", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}
