//! What the data set holds per day, kept beside the checkpoints so that a reconciliation
//! compares the API's totals with ours without reading a Parquet file: each partition's
//! rows per minute (written in the same transaction as the window that changed them), the
//! distinct rejects per day, and the record of reconciliations.

use rusqlite::{OptionalExtension, Transaction, params};

use super::migrations::COUNTS_SINCE;
use super::{State, StateError};

/// What a partition file holds, per minute of its day: the counts a reconciliation compares
/// with the API's totals, kept in the state database with the file's version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DayCounts {
    /// Rows not marked deleted, per minute of the UTC day (1,440 entries).
    pub minutes: Vec<u32>,
    /// Rows marked deleted.
    pub deleted: u32,
    /// The file's version: its row count and newest observation (`rows:max_seq`), read
    /// from its footer to tell whether these counts still describe it.
    pub version: String,
}

impl DayCounts {
    /// Counts of an empty partition.
    pub fn empty() -> DayCounts {
        DayCounts { minutes: vec![0; 1440], deleted: 0, version: crate::sink::format::reader::file_version(0, 0) }
    }

    /// Counts one row written.
    pub fn add(&mut self, r: &crate::row::StoredRow) {
        if r.deleted_at.is_some() {
            self.deleted += 1;
        } else {
            self.minutes[(r.task.create_time.rem_euclid(86_400) / 60) as usize] += 1;
        }
    }

    /// Rows not deleted in `[from, to)`, seconds of the day, rounded out to minutes.
    pub fn live_between(&self, from: i64, to: i64) -> u64 {
        let (a, b) = ((from.max(0) / 60) as usize, ((to + 59) / 60).min(1440) as usize);
        self.minutes.get(a..b).map_or(0, |m| m.iter().map(|&n| u64::from(n)).sum())
    }
}

/// A day's counts as recorded, with the rejects of that day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRecord {
    /// The partition's rows, as last written or counted.
    pub counts: DayCounts,
    /// Distinct rejects found in that day, per minute: records the API counts that we
    /// cannot store.
    pub rejects: Vec<u32>,
}

impl DayRecord {
    /// What we hold of `[from, to)` (seconds of the day): live rows and rejects.
    pub fn held_between(&self, from: i64, to: i64) -> u64 {
        let (a, b) = ((from.max(0) / 60) as usize, ((to + 59) / 60).min(1440) as usize);
        let rejects: u64 = self.rejects.get(a..b).map_or(0, |m| m.iter().map(|&n| u64::from(n)).sum());
        self.counts.live_between(from, to) + rejects
    }
}

/// One reconciliation's findings, as `status` and the metrics show them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reconciled {
    /// When it began (unix seconds).
    pub started_at: i64,
    /// When it ended (unix seconds).
    pub finished_at: i64,
    /// Days re-counted.
    pub days: u64,
    /// Days whose total matched ours.
    pub matched: u64,
    /// Ranges found to differ and re-listed.
    pub differing: u64,
    /// Ranges that could not be re-listed (left for the next reconciliation).
    pub failed: u64,
    /// Requests it made (retries included).
    pub requests: u64,
    /// The most requests its budget allowed.
    pub budget: u64,
    /// Pages it re-listed.
    pub pages: u64,
    /// Tasks the re-listing found that were not stored (listed late).
    pub new: u64,
    /// Stored tasks whose content the re-listing changed.
    pub changed: u64,
    /// Stored tasks the re-listing found deleted upstream.
    pub deleted: u64,
    /// Days whose counts were rebuilt from their files (missing, or disagreeing with them).
    pub rebuilt: u64,
    /// Days re-listed whole in rotation (what equal counts cannot show).
    #[serde(default)]
    pub relisted: u64,
}

fn blob(minutes: &[u32]) -> Vec<u8> {
    minutes.iter().flat_map(|n| n.to_le_bytes()).collect()
}

fn unblob(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The part of a window's checkpoint transaction that keeps these counts: the
/// partition's counts as written (`None`: its file did not change) and the window's
/// rejects as (date, identity, minute), each recorded once.
pub(super) fn record(
    tx: &Transaction<'_>,
    partition: Option<(&str, &DayCounts)>,
    rejects: &[(String, String, i64)],
    now: i64,
) -> rusqlite::Result<()> {
    if let Some((date, counts)) = partition {
        upsert(tx, date, counts, now)?;
    }
    let mut insert =
        tx.prepare("INSERT OR IGNORE INTO rejects_seen (date, key, minute, first_at) VALUES (?1, ?2, ?3, ?4)")?;
    for (date, key, minute) in rejects {
        insert.execute(params![date, key, minute, now])?;
    }
    Ok(())
}

/// Gives up the window's parts left behind for longer than `give_up_after` (they stay
/// listed, with the time they were given up); returns how many still wait.
pub(super) fn give_up(
    tx: &Transaction<'_>,
    job_id: &str,
    left: &[crate::plan::Window],
    now: i64,
    give_up_after: i64,
) -> rusqlite::Result<usize> {
    let mut waiting = 0;
    for w in left {
        let changed = tx.execute(
            "UPDATE left_behind SET given_up_at = ?4
             WHERE job_id = ?1 AND start_ts = ?2 AND end_ts = ?3 AND given_up_at IS NULL AND first_at <= ?4 - ?5",
            params![job_id, w.start, w.end, now, give_up_after],
        )?;
        if changed > 0 {
            tracing::error!(job = job_id, window = %w, left_behind_for = give_up_after, "Giving up a range left behind longer than sync.give_up_after: the cursor moves on past it; reconciliations still re-count it");
        }
        let given_up: Option<i64> = tx.query_row(
            "SELECT given_up_at FROM left_behind WHERE job_id = ?1 AND start_ts = ?2 AND end_ts = ?3",
            params![job_id, w.start, w.end],
            |r| r.get(0),
        )?;
        waiting += usize::from(given_up.is_none());
    }
    Ok(waiting)
}

fn upsert(conn: &rusqlite::Connection, date: &str, counts: &DayCounts, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO day_counts (date, minutes, deleted, version, counted_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(date) DO UPDATE SET minutes = excluded.minutes, deleted = excluded.deleted,
           version = excluded.version, counted_at = excluded.counted_at",
        params![date, blob(&counts.minutes), counts.deleted, counts.version, now],
    )?;
    Ok(())
}

impl State {
    /// The recorded counts of day `date`, if any.
    pub fn day_record(&self, date: &str) -> Result<Option<DayRecord>, StateError> {
        let q = || -> rusqlite::Result<Option<DayRecord>> {
            let counts = self
                .conn
                .query_row("SELECT minutes, deleted, version FROM day_counts WHERE date = ?1", [date], |r| {
                    Ok(DayCounts { minutes: unblob(&r.get::<_, Vec<u8>>(0)?), deleted: r.get(1)?, version: r.get(2)? })
                })
                .optional()?;
            let Some(counts) = counts else { return Ok(None) };
            let mut rejects = vec![0u32; 1440];
            let mut stmt =
                self.conn.prepare("SELECT minute, count(*) FROM rejects_seen WHERE date = ?1 GROUP BY minute")?;
            for row in stmt.query_map([date], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u32>(1)?)))? {
                let (minute, n) = row?;
                if let Some(slot) = rejects.get_mut(minute.clamp(0, 1439) as usize) {
                    *slot += n;
                }
            }
            Ok(Some(DayRecord { counts, rejects }))
        };
        q().map_err(|e| self.err(e))
    }

    /// Records counts rebuilt from a partition's file.
    pub fn store_day_counts(&self, date: &str, counts: &DayCounts, now: i64) -> Result<(), StateError> {
        upsert(&self.conn, date, counts, now).map_err(|e| self.err(e))
    }

    /// Which of `keys` (identity hashes of rejects in day `date`) are already recorded: a
    /// reject found again by a re-scan is neither appended nor counted twice.
    pub fn rejects_known(&self, date: &str, keys: &[String]) -> Result<std::collections::HashSet<String>, StateError> {
        let q = || -> rusqlite::Result<std::collections::HashSet<String>> {
            let mut stmt = self.conn.prepare("SELECT 1 FROM rejects_seen WHERE date = ?1 AND key = ?2")?;
            let mut known = std::collections::HashSet::new();
            for k in keys {
                if stmt.exists(params![date, k])? {
                    known.insert(k.clone());
                }
            }
            Ok(known)
        };
        q().map_err(|e| self.err(e))
    }

    /// Tasks marked deleted in the data set, by the recorded counts.
    pub fn deleted_tasks(&self) -> Result<u64, StateError> {
        if self.version < COUNTS_SINCE {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT coalesce(sum(deleted), 0) FROM day_counts", [], |r| r.get::<_, i64>(0).map(|n| n as u64))
            .map_err(|e| self.err(e))
    }

    /// Ranges given up (left behind longer than `sync.give_up_after`).
    pub fn ranges_given_up(&self) -> Result<u64, StateError> {
        if self.version < COUNTS_SINCE {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT count(*) FROM left_behind WHERE given_up_at IS NOT NULL", [], |r| {
                r.get::<_, i64>(0).map(|n| n as u64)
            })
            .map_err(|e| self.err(e))
    }

    /// Records a finished reconciliation.
    pub fn record_reconciliation(&self, r: &Reconciled) -> Result<(), StateError> {
        let json = serde_json::to_string(r).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO reconciliations (started_at, finished_at, summary) VALUES (?1, ?2, ?3)",
                params![r.started_at, r.finished_at, json],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// How many reconciliations have finished: the rotation's position.
    pub fn reconciliations(&self) -> Result<u64, StateError> {
        if self.version < COUNTS_SINCE {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT count(*) FROM reconciliations", [], |r| r.get::<_, i64>(0).map(|n| n as u64))
            .map_err(|e| self.err(e))
    }

    /// The last finished reconciliation, if any.
    pub fn last_reconciliation(&self) -> Result<Option<Reconciled>, StateError> {
        if self.version < COUNTS_SINCE {
            return Ok(None);
        }
        let json: Option<String> = self
            .conn
            .query_row("SELECT summary FROM reconciliations ORDER BY rowid DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}
