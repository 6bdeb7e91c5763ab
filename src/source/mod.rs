//! The source: the upstream `list_task` API (docs/api/list_task.md), and walking a window of
//! it until every record it holds has been seen.
//!
//! Rooms: [`client`] (HTTP, retries, rate limit: the only network I/O to the API;
//! `classify` tells it how an exchange failed),
//! [`sign`] (the vendor's signature), [`pace`] (pacing under a gateway's limit), [`decode`]
//! and [`field`] (the tolerant decoder, pure; [`raw_task`], a body as its fast path borrows
//! it), [`walker`] (one window leaf by leaf, in time
//! order, split where it is too full or does not settle) and [`paging`] (one range's pages,
//! on a task of its own, and the limits and errors of a walk).

mod classify;
pub mod client;
pub mod decode;
pub mod field;
pub mod pace;
pub mod paging;
pub mod raw_task;
pub mod sign;
pub mod walker;

use std::sync::atomic::AtomicU64;

use crate::time::show;

/// One page request: a window of `create_time` and an offset into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// First second of the window (sent as `start_time`, inclusive).
    pub start: i64,
    /// First second after the window. Sent as `end_time`, which the API may treat as
    /// inclusive; rows at `end` are dropped by the caller and fetched by the next window.
    pub end: i64,
    /// `start_num`.
    pub offset: u64,
    /// `count`.
    pub count: u32,
}

impl std::fmt::Display for PageQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "window [{}, {}) at offset {}", show(self.start), show(self.end), self.offset)
    }
}

/// Why a page could not be had. Every message names the window and, for API errors, the code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Code 1003 or HTTP 401/403: stop at once.
    #[error(
        "the API refused the credentials for {query} (code {code}: \"{msg}\"); check api.access_key_id and the secret key"
    )]
    AuthRefused { query: PageQuery, code: i64, msg: String },
    /// The server will not serve this offset (code 1002 past the first page): split the window.
    #[error("the API refused the deep offset of {query} (code {code}: \"{msg}\")")]
    DeepOffset { query: PageQuery, code: i64, msg: String },
    /// A permanent API or HTTP error: a bug on one side or a bad base_url.
    #[error("the API answered {query} with a permanent error (code {code}: \"{msg}\")")]
    Permanent { query: PageQuery, code: i64, msg: String },
    /// A page larger than `api.max_body_bytes`: the caller asks again for fewer records.
    #[error(
        "the API answered {query} with a body larger than api.max_body_bytes ({cap} bytes), even at count = {}",
        query.count
    )]
    TooLarge { query: PageQuery, cap: usize },
    /// Transient failures did not stop within the retry budget.
    #[error("gave up on {query} after {attempts} tries; the last failure: {last}")]
    Exhausted {
        /// The request that kept failing.
        query: PageQuery,
        /// Tries made, the first included.
        attempts: usize,
        /// The last failure, in words.
        last: String,
        /// Whether every try was answered with a body that could not be decoded (a page
        /// the API keeps breaking) rather than the API being unreachable.
        undecodable: bool,
    },
}

/// How one HTTP request to the API ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A page was decoded (or the clock probe answered).
    Ok,
    /// It failed transiently and the page is asked again.
    Retried(RetryCause),
    /// It failed and the page is given up (permanent, or the retry budget spent).
    Failed,
}

/// Who hears of each request the client makes, besides its own [`ApiStats`]: the seam
/// through which the process's metrics count requests without the client knowing them.
pub trait RequestObserver: Send + Sync {
    /// One request ended with `outcome`, `took` from sending it to its body read.
    fn request_ended(&self, outcome: RequestOutcome, took: std::time::Duration);

    /// The rate requests leave at now: `api.requests_per_second`, or the paced rate below
    /// it while the API answers bursts of 429. Told after every request.
    fn paced(&self, _requests_per_second: f64) {}
}

/// Why a request is asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// HTTP 429: a rate limit refused it.
    Throttled,
    /// HTTP 5xx or 408, a timeout, a broken connection, API codes 1000 and 1005.
    Transient,
    /// An API code nobody documents.
    UnknownCode,
    /// A body that is not a `list_task` response.
    Undecodable,
}

/// No observer: for a client whose requests nobody counts (`check`'s one probe).
impl RequestObserver for () {
    fn request_ended(&self, _: RequestOutcome, _: std::time::Duration) {}
}

/// Counters every request updates; read for the run summary and `status`.
#[derive(Debug, Default)]
pub struct ApiStats {
    /// HTTP requests sent, retries included.
    pub requests: AtomicU64,
    /// Requests repeated after a transient failure.
    pub retries: AtomicU64,
    /// Pages successfully decoded.
    pub pages: AtomicU64,
    /// Fields stored as null because their value had an unusable type.
    pub nulled_fields: AtomicU64,
    /// When a response last arrived (or [`ApiStats::touch`] was called), in milliseconds
    /// since the process's first use of it: what the daemon's watchdog calls progress.
    pub last_progress_ms: AtomicU64,
}

impl ApiStats {
    /// Milliseconds on a monotonic clock that starts at the first call.
    pub fn monotonic_ms() -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
    }

    /// Marks progress now (a response arrived, a pass began).
    pub fn touch(&self) {
        self.last_progress_ms.store(Self::monotonic_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// How long since the last progress.
    pub fn since_progress(&self) -> std::time::Duration {
        let last = self.last_progress_ms.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(Self::monotonic_ms().saturating_sub(last))
    }
}
