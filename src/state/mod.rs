//! The SQLite checkpoint database, and the only module that speaks SQL to it. Opening and
//! migrating live here; each concern has its room: [`checkpoints`] (jobs, intervals,
//! ranges left behind, cursors), [`unfinished`] (tasks re-checked), [`runs`] (runs,
//! pinned settings, sequences), [`counts`] (what each partition holds, reconciliations),
//! [`migrations`] (the schema, version by version). Schema versions live in
//! `PRAGMA user_version`.
//!
//! [`State::complete_window`] is the commit point of the whole pipeline: it runs only
//! after every file the window touched is durable (see `commit/mod.rs`), and records the
//! window as done in one transaction. WAL with `synchronous = FULL`: a committed
//! checkpoint survives power loss.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

mod checkpoints;
mod counts;
pub mod migrations;
mod runs;
mod unfinished;

pub use checkpoints::{JobProgress, LeftBehindRecord, TaskChanges, WindowCheckpoint};
pub use counts::{DayCounts, DayRecord, Reconciled};
pub use runs::RunRecord;

use migrations::MIGRATIONS;

/// Why the state database could not be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite refused a statement: the database is locked past the busy timeout, corrupt,
    /// or on a full disk.
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A newer tasksync wrote it: this one neither migrates nor writes into it.
    #[error(
        "state database {} has schema version {found}, written by a newer tasksync; this tasksync ({}) knows \
         versions up to {known} and will not write into it: upgrade tasksync, or restore a copy of the state database \
         an older tasksync wrote",
        path.display(), env!("CARGO_PKG_VERSION")
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        known: usize,
    },
    /// The file cannot be used as a state database (missing, unwritable, unreadable).
    #[error("state database {}: {message}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why, in a phrase.
        message: String,
    },
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

/// The incremental pass's cursor: everything before it (minus `lookback`) has been seen.
/// Also the job id under which its forward windows are left behind.
pub const INCREMENTAL: &str = "incremental";

/// The sequence that orders observations (see [`State::next_sequence`]).
pub const OBSERVATIONS: &str = "observations";

/// The job id under which re-check windows are left behind.
pub const RECHECK: &str = "recheck";

/// The job id under which ranges a reconciliation could not re-list are left behind.
pub const RECONCILE: &str = "reconcile";

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

/// The schema version a database has (`PRAGMA user_version`; 0 for a new file).
fn schema_version(conn: &Connection) -> Result<i64, String> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| format!("cannot read its version: {e}"))
}

/// Refuses a database a newer tasksync wrote, before anything is written into it.
fn refuse_newer(path: &Path, found: i64) -> Result<(), StateError> {
    if found as usize > MIGRATIONS.len() {
        return Err(StateError::TooNew { path: path.to_path_buf(), found, known: MIGRATIONS.len() });
    }
    Ok(())
}

impl State {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let err = |m: String| StateError::Unusable { path: path.to_path_buf(), message: m };
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
        // Read before anything that could write (the switch to WAL rewrites the header).
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| err(e.to_string()))?;
        let found = schema_version(&conn).map_err(err)?;
        refuse_newer(path, found)?;
        let mut state = State { conn, path: path.to_path_buf(), version: MIGRATIONS.len() };
        state.setup().map_err(err)?;
        Ok(state)
    }

    /// Opens an existing database for reading only, for `status`: it never creates,
    /// migrates or writes a byte of it, and works while writers run.
    pub fn open_read_only(path: &Path) -> Result<State, StateError> {
        let err = |m: String| StateError::Unusable { path: path.to_path_buf(), message: m };
        if !path.is_file() {
            return Err(err("does not exist: no sync has run with this config yet".into()));
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| err(format!("cannot open: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| err(e.to_string()))?;
        let version = schema_version(&conn).map_err(err)?;
        refuse_newer(path, version)?;
        Ok(State { conn, path: path.to_path_buf(), version: version as usize })
    }

    fn setup(&mut self) -> Result<(), String> {
        let version = self.pragmas()?;
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

    pub(crate) fn err(&self, e: rusqlite::Error) -> StateError {
        StateError::Sqlite { path: self.path.clone(), source: e }
    }

    /// The schema version this database has.
    pub fn version(&self) -> usize {
        self.version
    }

    /// `PRAGMA integrity_check`'s verdict ("ok" when healthy).
    pub fn integrity_check(&self) -> Result<String, StateError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
