//! The SQLite checkpoint database: jobs and their completed intervals, unfinished tasks,
//! and the record of runs. Schema versions live in `PRAGMA user_version`.
//!
//! [`State::complete_window`] is the commit point of the whole pipeline: it runs only
//! after every file the window touched is durable (see `sink/writer.rs`), and records the
//! window as done in one transaction. WAL with `synchronous = FULL`: a committed
//! checkpoint survives power loss.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::plan::{Window, coalesce};

pub mod counts;
pub use counts::{DayRecord, Reconciled};

/// Why the state database could not be used; names the file.
#[derive(Debug, thiserror::Error)]
#[error("state database {path}: {message}")]
pub struct StateError {
    path: PathBuf,
    message: String,
}

/// How long a statement waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Puts the database in WAL mode, waiting out other openers. A database still in rollback
/// mode (one just created) needs an exclusive lock to switch, and SQLite answers "database
/// is locked" at once, without the busy handler, while another opener holds a shared
/// lock: the service and a backfill started beside it, both creating the database, hit
/// that. So the switch is retried here until `patience` runs out.
fn enter_wal(conn: &Connection, patience: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let mode = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0));
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => return Err(format!("cannot use WAL journal mode (SQLite kept {mode:?})")),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("cannot switch to WAL journal mode: {e}")),
        }
    }
}

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, from_ts INTEGER NOT NULL, to_ts INTEGER NOT NULL,
        created_at INTEGER NOT NULL, finished_at INTEGER
    );
    CREATE TABLE job_intervals (
        job_id TEXT NOT NULL REFERENCES jobs(job_id), start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL,
        PRIMARY KEY (job_id, start_ts)
    );
    CREATE TABLE unfinished (
        task_id TEXT PRIMARY KEY, create_time INTEGER NOT NULL, status TEXT,
        first_seen_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL
    );
    CREATE INDEX unfinished_by_create_time ON unfinished(create_time);
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, started_at INTEGER NOT NULL,
        finished_at INTEGER, summary TEXT, error TEXT
    );
    CREATE TABLE cursors (name TEXT PRIMARY KEY, ts INTEGER NOT NULL);
"#,
    r#"
    ALTER TABLE unfinished ADD COLUMN given_up_at INTEGER;
"#,
    r#"
    CREATE TABLE left_behind (
        job_id TEXT NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL, reason TEXT NOT NULL,
        first_at INTEGER NOT NULL, last_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
        PRIMARY KEY (job_id, start_ts, end_ts)
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, set_at INTEGER NOT NULL);
    CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"#,
    r#"
    ALTER TABLE runs ADD COLUMN pid INTEGER;
"#,
    counts::SCHEMA,
];

/// The longest wait between two re-checks of an unfinished task.
pub const RECHECK_MAX_INTERVAL_S: i64 = 6 * 3600;

/// The incremental pass's cursor: everything before it (minus `lookback`) has been seen.
/// Also the job id under which its forward windows are left behind.
pub const INCREMENTAL: &str = "incremental";

/// The sequence that orders observations (see [`State::next_sequence`]).
pub const OBSERVATIONS: &str = "observations";

/// The job id under which re-check windows are left behind.
pub const RECHECK: &str = "recheck";

/// The job id under which ranges a reconciliation could not re-list are left behind.
pub const RECONCILE: &str = "reconcile";

/// A window (or part of one) that could not be committed exactly, kept for the next pass.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeftBehind {
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
    pub left: &'a [(Window, String)],
    /// The states of the tasks it committed.
    pub tasks: &'a TaskChanges,
    /// When its pages were fetched (unix seconds).
    pub now: i64,
    /// The partition's counts as written (`None` when its file did not change).
    pub counts: Option<(&'a str, &'a crate::sink::partition::DayCounts)>,
    /// The window's rejects: (partition date, identity hash, minute of the day), recorded
    /// once each.
    pub rejects: &'a [(String, String, i64)],
    /// `sync.give_up_after` in seconds: a part left behind for longer is given up.
    pub give_up_after: i64,
    /// A backfill's interval is recorded done only before this instant: the newest
    /// `sync.settle` at the time of fetching still changes (`i64::MAX`: all of it).
    pub settled_before: i64,
}

/// An open state database.
pub struct State {
    /// The connection.
    conn: Connection,
    /// The file, named in every error.
    path: PathBuf,
    /// The schema version it has: a read-only open of an older database neither migrates
    /// it nor asks it for tables it does not have yet.
    version: usize,
}

/// The schema version that added `left_behind`.
const LEFT_BEHIND_SINCE: usize = 3;

/// The schema version that added `runs.pid`.
pub const RUN_PID_SINCE: usize = 4;

impl State {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let err = |m: String| StateError { path: path.to_path_buf(), message: m };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its directory: {e}")))?;
        }
        // SQLite says only "unable to open database file" when the file or its directory
        // (where the WAL goes) cannot be written; ask the filesystem for the reason.
        if path.exists() {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| err(format!("cannot open for writing: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let mut state = State { conn, path: path.to_path_buf(), version: MIGRATIONS.len() };
        state.setup().map_err(err)?;
        Ok(state)
    }

    /// Opens an existing database for reading only, for `status`: it never creates,
    /// migrates or writes a byte of it, and works while writers run.
    pub fn open_read_only(path: &Path) -> Result<State, StateError> {
        let err = |m: String| StateError { path: path.to_path_buf(), message: m };
        if !path.is_file() {
            return Err(err("does not exist: no sync has run with this config yet".into()));
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| err(format!("cannot open: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| err(e.to_string()))?;
        let version: i64 =
            conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| err(e.to_string()))?;
        if version as usize > MIGRATIONS.len() {
            return Err(err(format!(
                "it has schema version {version}, newer than this tasksync knows; upgrade tasksync"
            )));
        }
        Ok(State { conn, path: path.to_path_buf(), version: version as usize })
    }

    fn setup(&mut self) -> Result<(), String> {
        let version = self.pragmas()?;
        if version as usize > MIGRATIONS.len() {
            return Err(format!(
                "it has schema version {version}, newer than this tasksync knows ({}); upgrade tasksync",
                MIGRATIONS.len()
            ));
        }
        self.migrate(version).map_err(|e| format!("cannot migrate the schema from version {version}: {e}"))
    }

    /// Sets the connection up; returns the schema version.
    fn pragmas(&mut self) -> Result<i64, String> {
        let c = &self.conn;
        c.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
        enter_wal(c, BUSY_TIMEOUT)?;
        c.pragma_update(None, "synchronous", "FULL").map_err(|e| format!("cannot set synchronous = FULL: {e}"))?;
        c.pragma_update(None, "foreign_keys", "ON").map_err(|e| format!("cannot enable foreign keys: {e}"))?;
        c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| format!("cannot read its version: {e}"))
    }

    /// Applies pending migrations. The version is read again under the write lock
    /// (`BEGIN IMMEDIATE`), so two processes opening a new database at once (a first `run`
    /// and a `status`, say) do not both try to create the schema.
    fn migrate(&mut self, seen: i64) -> rusqlite::Result<()> {
        if seen as usize >= MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()
    }

    fn err(&self, e: rusqlite::Error) -> StateError {
        StateError { path: self.path.clone(), message: e.to_string() }
    }

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
    /// partition file and rejects are durable (see `sync/commit.rs`). The incremental
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
        let left: Vec<(i64, i64)> = c.left.iter().map(|(w, _)| (w.start, w.end)).collect();
        if c.keeps_intervals {
            let mut intervals: Vec<(i64, i64)> = {
                let mut stmt = tx.prepare("SELECT start_ts, end_ts FROM job_intervals WHERE job_id = ?1")?;
                stmt.query_map([c.job_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?
            };
            let end = c.window.end.min(c.settled_before.max(c.window.start));
            intervals.extend(crate::plan::subtract(c.window.start, end, &left));
            tx.execute("DELETE FROM job_intervals WHERE job_id = ?1", [c.job_id])?;
            for (s, e) in coalesce(intervals) {
                tx.execute(
                    "INSERT INTO job_intervals (job_id, start_ts, end_ts) VALUES (?1, ?2, ?3)",
                    params![c.job_id, s, e],
                )?;
            }
        }
        // A part left behind again keeps the age of what it replaces: its bounds may move
        // from pass to pass (a window ending at "now", leaves split by a moving total), and
        // `sync.give_up_after` counts from the first time any of it was left behind.
        let mut first_at: Vec<Option<i64>> = Vec::with_capacity(c.left.len());
        for (w, _) in c.left {
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
            let rows =
                stmt.query_map(params![c.job_id, c.window.start, c.window.end], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>()?.into_iter().filter(|w| !left.contains(w)).collect()
        };
        for (s, e) in stale {
            tx.execute(
                "DELETE FROM left_behind WHERE job_id = ?1 AND start_ts = ?2 AND end_ts = ?3",
                params![c.job_id, s, e],
            )?;
        }
        for ((w, reason), first) in c.left.iter().zip(first_at) {
            tx.execute(
                "INSERT INTO left_behind (job_id, start_ts, end_ts, reason, first_at, last_at, attempts)
                 VALUES (?1, ?2, ?3, ?4, ?6, ?5, 1)
                 ON CONFLICT(job_id, start_ts, end_ts) DO UPDATE SET
                   reason = excluded.reason, last_at = excluded.last_at, attempts = attempts + 1",
                params![c.job_id, w.start, w.end, reason, c.now, first.unwrap_or(c.now).min(c.now)],
            )?;
        }
        {
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
        }
        counts::record(&tx, c)?;
        let waiting = counts::give_up(&tx, c)?;
        tx.commit()?;
        Ok(waiting)
    }

    /// The windows left behind, of one job or of all, oldest range first.
    pub fn left_behind(&self, job_id: Option<&str>) -> Result<Vec<LeftBehind>, StateError> {
        if self.version < LEFT_BEHIND_SINCE {
            return Ok(Vec::new());
        }
        let query = || -> rusqlite::Result<Vec<LeftBehind>> {
            let given_up = if self.version >= counts::COUNTS_SINCE { "given_up_at" } else { "NULL" };
            let mut stmt = self.conn.prepare(&format!(
                "SELECT job_id, start_ts, end_ts, reason, first_at, last_at, attempts, {given_up} FROM left_behind
                 WHERE ?1 IS NULL OR job_id = ?1 ORDER BY start_ts, job_id"
            ))?;
            let rows = stmt.query_map([job_id], |r| {
                Ok(LeftBehind {
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

    /// The tracked (unfinished or given-up) task ids created inside `window`.
    pub fn unfinished_ids(&self, window: Window) -> Result<std::collections::HashSet<String>, StateError> {
        let query = || -> rusqlite::Result<std::collections::HashSet<String>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT task_id FROM unfinished WHERE create_time >= ?1 AND create_time < ?2")?;
            stmt.query_map([window.start, window.end], |r| r.get(0))?.collect()
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

    /// Stops re-checking unfinished tasks created before `cutoff`; returns how many.
    pub fn give_up_before(&self, cutoff: i64, now: i64) -> Result<usize, StateError> {
        self.conn
            .execute(
                "UPDATE unfinished SET given_up_at = ?2 WHERE given_up_at IS NULL AND create_time < ?1",
                params![cutoff, now],
            )
            .map_err(|e| self.err(e))
    }

    /// Create times of the unfinished tasks still being re-checked, in `[from, to)`, sorted.
    #[cfg(test)]
    pub fn unfinished_between(&self, from: i64, to: i64) -> Result<Vec<i64>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT create_time FROM unfinished WHERE given_up_at IS NULL AND create_time >= ?1 AND create_time < ?2 ORDER BY create_time")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![from, to], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<i64>, _>>().map_err(|e| self.err(e))
    }

    /// Create times of the unfinished tasks due for a re-check at `now`, in `[from, to)`,
    /// sorted. A task is due once the time since it was last seen reaches a twelfth of its
    /// age, capped at [`RECHECK_MAX_INTERVAL_S`]: young tasks on every pass, a day-old one
    /// every two hours, older ones every six. Stuck tasks then cost a few requests an
    /// hour instead of a re-read of `reopen_max_age` on every pass. A task last seen "in
    /// the future" (our clock ran ahead then and was set back) is due at once.
    pub fn unfinished_due(&self, from: i64, to: i64, now: i64) -> Result<Vec<i64>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT create_time FROM unfinished WHERE given_up_at IS NULL AND create_time >= ?1 AND create_time < ?2
                 AND (?3 - last_seen_at >= min(max((?3 - create_time) / 12, 0), ?4) OR last_seen_at > ?3)
                 ORDER BY create_time",
            )
            .map_err(|e| self.err(e))?;
        let rows =
            stmt.query_map(params![from, to, now, RECHECK_MAX_INTERVAL_S], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<i64>, _>>().map_err(|e| self.err(e))
    }

    /// Marks a job finished (all of its range done).
    pub fn finish_job(&self, job_id: &str, now: i64) -> Result<(), StateError> {
        self.conn
            .execute("UPDATE jobs SET finished_at = ?2 WHERE job_id = ?1", params![job_id, now])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The schema version this database has.
    pub fn version(&self) -> usize {
        self.version
    }

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

    /// Number of tasks last seen unfinished and still re-checked.
    pub fn unfinished_count(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("SELECT count(*) FROM unfinished WHERE given_up_at IS NULL", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Runs a read-only query for `status`; the caller maps rows.
    pub fn query<T>(
        &self,
        sql: &str,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StateError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], map).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<T>, _>>().map_err(|e| self.err(e))
    }

    /// A job's finish time, `None` while unfinished or unknown.
    pub fn job_finished_at(&self, job_id: &str) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row("SELECT finished_at FROM jobs WHERE job_id = ?1", [job_id], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`'s verdict ("ok" when healthy).
    pub fn integrity_check(&self) -> Result<String, StateError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
