//! What the metrics are told, in their own words: how a request or a pass ended, why a
//! request was asked again, what a reconciliation compared and found, and the gauges of
//! the data set read at each scrape.

/// How one HTTP request to the API ended, for `tasksync_requests_total{outcome}`.
#[derive(Debug, Clone, Copy)]
pub enum RequestResult {
    /// A page was decoded (or the clock probe answered).
    Ok,
    /// It failed transiently and the page is asked again.
    Retried,
    /// It failed and the page is given up (permanent, or the retry budget spent).
    Failed,
}

/// How a pass ended, for `tasksync_passes_total{result}`.
#[derive(Debug, Clone, Copy)]
pub enum PassResult {
    /// Every window committed.
    Ok,
    /// Some windows left for the next pass.
    Partial,
    /// The pass stopped (credentials, API unreachable, disk, state database).
    Failed,
}

/// What a reconciliation compared, for `tasksync_reconcile_ranges_total{result}`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReconcileCounts {
    /// Days whose counts matched the API's.
    pub matched: u64,
    /// Ranges whose counts differed (re-listed).
    pub differing: u64,
    /// Ranges that could not be re-listed.
    pub failed: u64,
    /// When it ended (unix seconds).
    pub finished_at: i64,
}

/// The last reconciliation's figures, as `status` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastReconcile {
    /// Requests it made.
    pub requests: u64,
    /// Its budget (see `sync/reconcile.rs`).
    pub budget: u64,
    /// Tasks it found new, changed and deleted.
    pub found: [u64; 3],
}

/// Why a request was asked again, for `tasksync_request_retries_total{reason}`.
#[derive(Debug, Clone, Copy)]
pub enum RetryReason {
    /// HTTP 429: the API's (or a gateway's) rate limit refused it.
    Throttled,
    /// HTTP 5xx or 408, a timeout, a broken connection, API codes 1000 and 1005.
    Transient,
    /// An API code nobody documents, asked again a few times.
    UnknownCode,
    /// A body that is not a `list_task` response.
    Undecodable,
}

impl RetryReason {
    pub(super) const ALL: [RetryReason; 4] =
        [RetryReason::Throttled, RetryReason::Transient, RetryReason::UnknownCode, RetryReason::Undecodable];

    pub(super) fn label(self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::Transient => "transient",
            RetryReason::UnknownCode => "unknown_code",
            RetryReason::Undecodable => "undecodable",
        }
    }
}

/// The gauges that describe the data set, read from the state database at each scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// Tasks still re-checked.
    pub unfinished: i64,
    /// Tasks past `sync.reopen_max_age`, no longer re-checked.
    pub given_up: i64,
    /// Ranges waiting for the next pass (not given up).
    pub left_behind: i64,
    /// Ranges given up.
    pub ranges_given_up: i64,
    /// When the last pass that did not fail ended.
    pub last_success_at: Option<i64>,
    /// When the last reconciliation ended.
    pub last_reconcile_at: Option<i64>,
    /// Each unfinished backfill job and the share of its range done (0 to 1).
    pub backfills: Vec<(String, f64)>,
    /// Seconds since the oldest task still re-checked was created.
    pub oldest_unfinished_age_s: Option<i64>,
    /// The last reconciliation's requests against its budget and what it found.
    pub last_reconcile: Option<LastReconcile>,
}
