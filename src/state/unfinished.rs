//! Tasks last seen unfinished: kept for re-checks until final or given up.

use rusqlite::params;

use super::{State, StateError};
use crate::plan::Window;

/// The longest wait between two re-checks of an unfinished task.
pub const RECHECK_MAX_INTERVAL_S: i64 = 6 * 3600;

impl State {
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

    /// Number of tasks last seen unfinished and still re-checked.
    pub fn unfinished_count(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("SELECT count(*) FROM unfinished WHERE given_up_at IS NULL", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Tasks no longer re-checked: past `sync.reopen_max_age` while unfinished.
    pub fn given_up_count(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("SELECT count(*) FROM unfinished WHERE given_up_at IS NOT NULL", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The create time of the oldest task still re-checked.
    pub fn oldest_unfinished(&self) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row("SELECT min(create_time) FROM unfinished WHERE given_up_at IS NULL", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}
