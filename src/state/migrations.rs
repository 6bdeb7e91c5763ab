//! The state database's schema: each migration, in order, and the versions that added
//! what a read-only open of an older database must not ask for.

/// Each entry migrates from version `index` to `index + 1`.
/// The schema version this build writes: the number of migrations.
pub const VERSION: usize = MIGRATIONS.len();

pub(super) const MIGRATIONS: &[&str] = &[
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
    COUNTS,
];

/// The schema version that added `left_behind`.
pub(super) const LEFT_BEHIND_SINCE: usize = 3;

/// The schema version that added `runs.pid`.
pub const RUN_PID_SINCE: usize = 4;

/// The schema version that added `day_counts`, `rejects_seen`, `reconciliations` and
/// `left_behind.given_up_at`.
pub(super) const COUNTS_SINCE: usize = 5;

/// Version 5: what each partition holds per minute, the rejects seen, the record of
/// reconciliations, and when a range left behind was given up.
const COUNTS: &str = r#"
    CREATE TABLE day_counts (
        date TEXT PRIMARY KEY, minutes BLOB NOT NULL, deleted INTEGER NOT NULL, version TEXT NOT NULL,
        counted_at INTEGER NOT NULL
    );
    CREATE TABLE rejects_seen (
        date TEXT NOT NULL, key TEXT NOT NULL, minute INTEGER NOT NULL, first_at INTEGER NOT NULL,
        PRIMARY KEY (date, key)
    );
    CREATE TABLE reconciliations (
        started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL, summary TEXT NOT NULL
    );
    ALTER TABLE left_behind ADD COLUMN given_up_at INTEGER;
"#;
