//! Where the pipeline meets the metrics, which know nothing of it: the client's requests
//! through the source module's `RequestObserver`, and the gauges a scrape reads from the state
//! database. (A pass's own events go through [`Pass::record`](super::pass::Pass::record).)

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::metrics::serve::{Endpoint, ReadGauges};
use crate::metrics::{Gauges, LastReconcile, Metrics, RequestResult, RetryReason};
use crate::source::{RequestObserver, RequestOutcome, RetryCause};
use crate::state::{INCREMENTAL, State, StateError};
use crate::time::Clock;

/// Counts the client's requests in the process's metrics.
pub struct MetricsObserver(pub Arc<Metrics>);

impl RequestObserver for MetricsObserver {
    fn request_ended(&self, outcome: RequestOutcome, took: Duration) {
        let result = match outcome {
            RequestOutcome::Ok => RequestResult::Ok,
            RequestOutcome::Retried(cause) => {
                self.0.retried(match cause {
                    RetryCause::Throttled => RetryReason::Throttled,
                    RetryCause::Transient => RetryReason::Transient,
                    RetryCause::UnknownCode => RetryReason::UnknownCode,
                    RetryCause::Undecodable => RetryReason::Undecodable,
                });
                RequestResult::Retried
            }
            RequestOutcome::Failed => RequestResult::Failed,
        };
        self.0.request_ended(result, took.as_secs_f64());
    }

    fn paced(&self, requests_per_second: f64) {
        self.0.pacing(requests_per_second);
    }
}

/// The metrics endpoint of `cfg` (`None` when `metrics.listen` is unset), its gauges read
/// from the state database at each scrape, read-only: they show what other processes did
/// too (a backfill beside the service appears in the service's scrape).
pub fn endpoint(cfg: &Config, clock: Clock) -> Option<Endpoint> {
    let addr = cfg.metrics.listen?;
    let cfg = Arc::new(cfg.clone());
    let key = cfg.metrics.key;
    let read: ReadGauges = Arc::new(move || read_gauges(&cfg, clock()).map_err(|e| e.to_string()));
    Some(Endpoint { addr, key, read })
}

/// The lag at `now` and the gauges of the data set (`None`: no state database yet).
/// Before there is a cursor, the lag counts from `sync.start`.
pub fn read_gauges(cfg: &Config, now: i64) -> Result<(Option<i64>, Option<Gauges>), StateError> {
    let from_start = cfg.sync.start.map(|s| now - s);
    let path = &cfg.storage.state_db;
    if !path.exists() {
        return Ok((from_start, None));
    }
    let s = State::open_read_only(path)?;
    let lag = s.cursor(INCREMENTAL)?.map(|c| now - c).or(from_start);
    let left = s.left_behind(None)?;
    let last = s.last_reconciliation()?;
    let gauges = Gauges {
        oldest_unfinished_age_s: s.oldest_unfinished()?.map(|at| now - at),
        last_reconcile: last.as_ref().map(|r| LastReconcile {
            requests: r.requests,
            budget: r.budget,
            found: [r.new, r.changed, r.deleted],
        }),
        unfinished: s.unfinished_count()?,
        given_up: s.given_up_count()?,
        left_behind: left.iter().filter(|l| l.given_up_at.is_none()).count() as i64,
        ranges_given_up: s.ranges_given_up()? as i64,
        last_success_at: s.last_success_at()?,
        last_reconcile_at: last.map(|r| r.finished_at),
        backfills: s
            .jobs()?
            .into_iter()
            .filter(|j| j.finished_at.is_none())
            .map(|j| {
                let ratio = j.done_percent() / 100.0;
                (j.job_id, ratio)
            })
            .collect(),
    };
    Ok((lag, Some(gauges)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Window;

    #[test]
    fn before_a_state_database_exists_the_lag_counts_from_sync_start_and_nothing_else_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::in_dir(dir.path(), "[sync]\nstart = \"1000\"");
        assert_eq!(read_gauges(&cfg, 5000).unwrap(), (Some(4000), None));
        assert!(!cfg.storage.state_db.exists(), "a scrape creates no state database");
    }

    #[test]
    fn the_gauges_show_unfinished_backfills_and_ranges_waiting_but_not_those_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::in_dir(dir.path(), "[sync]\nstart = \"1000\"");
        let s = State::open(&cfg.storage.state_db).unwrap();
        s.ensure_job("running", "backfill", Window::new(0, 400), 1).unwrap();
        s.ensure_job("done", "backfill", Window::new(0, 100), 2).unwrap();
        s.finish_job("done", 3).unwrap();
        s.advance_cursor(INCREMENTAL, 4_900).unwrap();
        drop(s);
        let conn = rusqlite::Connection::open(&cfg.storage.state_db).unwrap();
        conn.execute("INSERT INTO job_intervals VALUES ('running', 0, 100)", []).unwrap();
        for (start, given_up) in [(0, None), (100, Some(7))] {
            conn.execute(
                "INSERT INTO left_behind VALUES ('incremental', ?1, ?1 + 60, 'r', 1, 1, 1, ?2)",
                rusqlite::params![start, given_up],
            )
            .unwrap();
        }
        let (lag, gauges) = read_gauges(&cfg, 5_000).unwrap();
        let g = gauges.unwrap();
        assert_eq!(lag, Some(100), "with a cursor the lag counts from it");
        assert_eq!(g.backfills, vec![("running".to_string(), 0.25)], "a finished backfill is not shown");
        assert_eq!((g.left_behind, g.ranges_given_up), (1, 1));
    }
}
