//! `tasksync status`: what the state database says, as text or JSON. Read-only; works
//! while a daemon runs.

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::state::{INCREMENTAL, JobProgress, LeftBehindRecord, RunRecord, State, StateError};
use crate::time::show;

/// Everything `status` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Path of the state database read.
    pub state_db: String,
    /// Whether a `run` or `sync` holds the writer lock right now.
    pub writer_running: bool,
    /// How many processes write to the output now (a `run` and a backfill: 2).
    pub writers: usize,
    /// How far the incremental passes have committed (UTC); `None` until a first window is.
    pub cursor: Option<String>,
    /// Seconds between the cursor and now.
    pub lag_s: Option<i64>,
    /// Unfinished tasks still re-checked by every pass (given-up ones not counted).
    pub unfinished: i64,
    /// Create time (UTC) of the oldest task still re-checked.
    pub oldest_unfinished: Option<String>,
    /// Unfinished tasks no longer re-checked: older than `sync.reopen_max_age`.
    pub given_up: i64,
    /// Records rejected (kept in the rejects file), summed over the recorded passes.
    pub rejects: i64,
    /// When the last pass that did not fail ended (UTC), and the same in unix seconds.
    pub last_success: Option<String>,
    /// `last_success` in unix seconds, for scripts.
    pub last_success_at: Option<i64>,
    /// Ranges that could not be committed exactly, retried first by the next pass.
    pub left_behind: Vec<LeftBehindReport>,
    /// Every backfill job, with how much of its range is done.
    pub jobs: Vec<JobReport>,
    /// The recent passes, newest first: the last ten of each process that ran them.
    pub passes: Vec<PassReport>,
    /// Tasks marked deleted upstream, by the counts recorded per day.
    pub deleted: u64,
    /// The last reconciliation with the API's totals, if one ran.
    pub last_reconcile: Option<crate::state::Reconciled>,
    /// Ranges given up: left behind longer than `sync.give_up_after`.
    pub ranges_given_up: u64,
}

/// One range left for the next pass.
#[derive(Debug, Serialize)]
pub struct LeftBehindReport {
    /// The backfill job, `incremental` (a forward window: the cursor waits before it) or
    /// `recheck` (a re-check of unfinished tasks).
    pub job_id: String,
    /// Its start (UTC).
    pub from: String,
    /// Its end (exclusive).
    pub to: String,
    /// Why, in the last attempt's words.
    pub reason: String,
    /// Passes that tried it.
    pub attempts: i64,
    /// When it was first and last tried.
    pub first_at: String,
    /// When it was last tried (UTC).
    pub last_at: String,
    /// When it was given up (left behind longer than `sync.give_up_after`), if it was.
    pub given_up_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct JobReport {
    /// The backfill job's id.
    pub job_id: String,
    /// Start of its range (UTC).
    pub from: String,
    /// End of its range (UTC, exclusive).
    pub to: String,
    /// Share of the range done, in percent with one decimal.
    pub done_percent: f64,
    /// Whether all of the range is done.
    pub finished: bool,
}

#[derive(Debug, Serialize)]
pub struct PassReport {
    /// `incremental` or `backfill`.
    pub kind: String,
    /// "finished", "running (pid N)", or "interrupted" (unfinished, its process gone).
    pub state: String,
    /// When the pass started (UTC).
    pub started: String,
    /// How long it took, in whole seconds; `None` until it finishes.
    pub seconds: Option<i64>,
    /// The pass's totals as stored (windows, requests, new, changed, files_written, ...).
    pub totals: Option<serde_json::Value>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Reads the report; `None` when there is no state database yet.
pub fn report(cfg: &Config, now: i64) -> Result<Option<Report>, StateError> {
    let path = &cfg.storage.state_db;
    if !path.exists() {
        return Ok(None);
    }
    let s = State::open_read_only(path)?;
    let writers = crate::sink::store::staging::writers_running(&cfg.storage.output_dir);
    let cursor = s.cursor(INCREMENTAL)?;
    let last_success_at = s.last_success_at()?;
    Ok(Some(Report {
        state_db: path.display().to_string(),
        writer_running: writers > 0,
        writers,
        cursor: cursor.map(show),
        lag_s: cursor.map(|c| now - c),
        unfinished: s.unfinished_count()?,
        oldest_unfinished: s.oldest_unfinished()?.map(show),
        given_up: s.given_up_count()?,
        rejects: s.rejects_total()?,
        last_success: last_success_at.map(show),
        last_success_at,
        left_behind: s.left_behind(None)?.into_iter().map(LeftBehindReport::from).collect(),
        jobs: s.jobs()?.into_iter().map(JobReport::from).collect(),
        passes: s.recent_runs(10)?.into_iter().map(PassReport::from).collect(),
        deleted: s.deleted_tasks()?,
        last_reconcile: s.last_reconciliation()?,
        ranges_given_up: s.ranges_given_up()?,
    }))
}

impl From<LeftBehindRecord> for LeftBehindReport {
    fn from(l: LeftBehindRecord) -> Self {
        LeftBehindReport {
            job_id: l.job_id,
            from: show(l.start),
            to: show(l.end),
            reason: l.reason,
            attempts: l.attempts,
            first_at: show(l.first_at),
            last_at: show(l.last_at),
            given_up_at: l.given_up_at.map(show),
        }
    }
}

impl From<JobProgress> for JobReport {
    fn from(j: JobProgress) -> Self {
        JobReport {
            done_percent: j.done_percent(),
            job_id: j.job_id,
            from: show(j.window.start),
            to: show(j.window.end),
            finished: j.finished_at.is_some(),
        }
    }
}

impl From<RunRecord> for PassReport {
    fn from(r: RunRecord) -> Self {
        let state = match (r.finished_at, r.pid) {
            (Some(_), _) => "finished".to_string(),
            // A process that is gone cannot still be running its pass.
            (None, Some(pid)) if Path::new(&format!("/proc/{pid}")).exists() => format!("running (pid {pid})"),
            (None, _) => "interrupted".to_string(),
        };
        PassReport {
            kind: r.kind,
            state,
            started: show(r.started_at),
            seconds: r.finished_at.map(|f| f - r.started_at),
            totals: r.summary.and_then(|t| serde_json::from_str(&t).ok()),
            error: r.error,
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "state:      {} ({})",
            self.state_db,
            if self.writers > 0 { format!("{} writer(s) running", self.writers) } else { "idle".to_string() }
        )?;
        match (&self.cursor, self.lag_s) {
            (Some(c), Some(lag)) => writeln!(
                f,
                "cursor:     {c} ({} behind now)",
                humantime::format_duration(std::time::Duration::from_secs(lag.max(0) as u64))
            )?,
            _ => writeln!(f, "cursor:     none (no incremental pass has completed a window yet)")?,
        }
        writeln!(
            f,
            "unfinished: {} re-checked{}; {} given up",
            self.unfinished,
            self.oldest_unfinished.as_ref().map(|o| format!(", oldest created {o}")).unwrap_or_default(),
            self.given_up
        )?;
        writeln!(f, "rejects:    {}", self.rejects)?;
        writeln!(f, "deleted:    {} (rows kept, deleted_at set: deleted upstream)", self.deleted)?;
        self.fmt_reconciled(f)?;
        writeln!(
            f,
            "success:    {}",
            self.last_success.as_deref().unwrap_or("none yet (no pass has finished without failing)")
        )?;
        if self.left_behind.is_empty() {
            writeln!(f, "left:       none (every window planned so far was committed)")?;
        }
        for l in &self.left_behind {
            let given_up =
                l.given_up_at.as_ref().map(|g| format!(" GIVEN UP at {g} (the cursor moved on)")).unwrap_or_default();
            writeln!(
                f,
                "left:       {} [{}, {}) tried {}x since {}, last {}{given_up}: {}",
                l.job_id, l.from, l.to, l.attempts, l.first_at, l.last_at, l.reason
            )?;
        }
        self.fmt_jobs_and_passes(f)
    }
}

impl Report {
    /// The `reconciled:` line.
    fn fmt_reconciled(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.last_reconcile {
            Some(r) => writeln!(
                f,
                "reconciled: {}: {} days, {} matched, {} ranges differed ({} re-listed, {} failed); {} requests of a budget of {}; found {} new, {} changed, {} deleted",
                show(r.finished_at),
                r.days,
                r.matched,
                r.differing,
                r.differing - r.failed.min(r.differing),
                r.failed,
                r.requests,
                r.budget,
                r.new,
                r.changed,
                r.deleted
            )?,
            None => writeln!(f, "reconciled: never (it runs every sync.reconcile_every)")?,
        }
        Ok(())
    }

    /// The `job:` and `pass:` lines.
    fn fmt_jobs_and_passes(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for j in &self.jobs {
            writeln!(
                f,
                "job:        {} [{}, {}) {}% {}",
                j.job_id,
                j.from,
                j.to,
                j.done_percent,
                if j.finished { "finished" } else { "unfinished" }
            )?;
        }
        for p in &self.passes {
            let t = p.totals.as_ref();
            let n = |k: &str| t.and_then(|t| t.get(k)).map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "pass:       {} {} {} {}s windows={} requests={} new={} changed={} files_written={}{}",
                p.started,
                p.kind,
                p.state,
                p.seconds.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                n("windows"),
                n("requests"),
                n("new"),
                n("changed"),
                n("files_written"),
                p.error.as_ref().map(|e| format!(" error: {e}")).unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_in_progress_shows_its_pid_and_one_whose_process_died_shows_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::in_dir(dir.path(), "");
        let s = State::open(&cfg.storage.state_db).unwrap();
        let done = s.start_run("incremental", 10).unwrap();
        s.finish_run(done, 20, "{}", None).unwrap();
        s.start_run("backfill", 30).unwrap();
        let dead = s.start_run("backfill", 40).unwrap();
        drop(s);
        let conn = rusqlite::Connection::open(&cfg.storage.state_db).unwrap();
        conn.execute("UPDATE runs SET pid = ?1 WHERE run_id = ?2", rusqlite::params![u32::MAX - 1, dead]).unwrap();
        let states: Vec<String> = report(&cfg, 50).unwrap().unwrap().passes.into_iter().map(|p| p.state).collect();
        assert_eq!(
            states,
            ["interrupted".to_string(), format!("running (pid {})", std::process::id()), "finished".into()]
        );
    }

    #[test]
    fn status_shows_the_last_ten_passes_of_each_process_not_ten_overall() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::in_dir(dir.path(), "");
        let s = State::open(&cfg.storage.state_db).unwrap();
        // A backfill's one pass, then fifteen passes of the service.
        let backfill = s.start_run("backfill", 5).unwrap();
        for t in 0..15 {
            let run = s.start_run("incremental", 10 + t).unwrap();
            s.finish_run(run, 11 + t, "{}", None).unwrap();
        }
        drop(s);
        let conn = rusqlite::Connection::open(&cfg.storage.state_db).unwrap();
        conn.execute("UPDATE runs SET pid = 1 WHERE run_id != ?1", [backfill]).unwrap();
        let passes = report(&cfg, 50).unwrap().unwrap().passes;
        let kinds: Vec<&str> = passes.iter().map(|p| p.kind.as_str()).collect();
        assert_eq!(kinds.len(), 11, "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "incremental").count(), 10);
        assert_eq!(kinds.last(), Some(&"backfill"), "the backfill's pass stays in view");
    }
}
