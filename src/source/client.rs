//! The `list_task` HTTP client: signing, per-request timeout, at most `concurrency`
//! requests in flight, a client-side rate limit, and retries with backoff and jitter.
//!
//! Transient: HTTP 5xx and 429 (honouring `Retry-After`, capped at `retry_max_delay`; a
//! burst of 429s paces every request below the API's limit, see `pace.rs`),
//! 408, connect/reset/timeout, a truncated, oversized or non-JSON body, codes 1000 and 1005,
//! and an unknown code for its first few tries. Permanent: 1001, 1002, 1003 (and HTTP
//! 401/403), other 4xx. The secret is used to sign and nowhere else; no error carries it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::classify::{
    TryError, classify_code, classify_status, describe, http_client_error, retry_after, trusting_nothing,
};
use super::decode::{DecodeOptions, Envelope, Page, decode_page};
use super::sign::{self, Request};
use super::{ApiError, ApiStats, PageQuery, RequestObserver, RequestOutcome, RetryCause};
use crate::config::{ApiConfig, Auth};
use crate::time::Clock;

/// Unknown API codes are retried this many times before they count as permanent.
const UNKNOWN_CODE_TRIES: usize = 3;

/// A client for one base URL. Cheap to share behind an `Arc`.
pub struct Client {
    /// Connection pool with the per-request timeout.
    http: reqwest::Client,
    /// `{base_url}/api/list_task`.
    url: reqwest::Url,
    /// Page size, retry budget, credentials.
    cfg: ApiConfig,
    /// How bodies are decoded (zone, URL query stripping).
    decode: DecodeOptions,
    /// Bounds requests in flight to `api.concurrency`.
    inflight: Semaphore,
    /// `api.requests_per_second`.
    limiter: DefaultDirectRateLimiter,
    /// How long a request takes, smoothed (microseconds; 0 before the first): tells the
    /// walker whether the server is far enough to page ranges ahead.
    request_us: AtomicU64,
    /// A slower rate found when the API answers 429 (see `pace.rs`).
    pace: super::pace::Pace,
    /// For the `Date` header.
    clock: Clock,
    /// Makes nonces unique within the process.
    nonce: AtomicU64,
    /// Counters for the run summary.
    pub stats: Arc<ApiStats>,
    /// Hears how each request ended (the metrics, in a pass).
    observer: Arc<dyn RequestObserver>,
    /// The server's `Date` minus our clock at its last response ([`NO_OFFSET`] before
    /// one): windows are never planned past the API's own "now".
    server_offset: AtomicI64,
    /// Our clock and the monotonic clock when `server_offset` was last measured: when our
    /// clock has since moved differently from the monotonic one (an operator or NTP
    /// stepped it), the offset no longer holds and the API is asked again.
    offset_measured: std::sync::Mutex<Option<(i64, std::time::Instant)>>,
}

/// A request time from which the server counts as far away: on loopback a page takes a
/// millisecond or two, a real API tens to hundreds.
pub const FAR_SERVER: Duration = Duration::from_millis(15);

/// Seconds our clock may drift from the monotonic clock between two measurements of the
/// API's offset before the offset is measured again.
const CLOCK_STEP_S: i64 = 5;

/// [`Client::server_offset`] before any response carried a `Date`.
const NO_OFFSET: i64 = i64::MIN;

impl Client {
    /// Builds a client; fails if the TLS backend cannot start (for an https API: no CA
    /// certificate on the host), with a sentence that says so.
    pub fn new(
        cfg: &ApiConfig,
        keep_url_query: bool,
        clock: Clock,
        observer: Arc<dyn RequestObserver>,
    ) -> Result<Client, String> {
        if let Auth::Visionular { secret, .. } = &cfg.auth
            && !secret.is_loaded()
        {
            return Err("the secret key was not loaded: a read-only command cannot call the API".into());
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tasksync/", env!("CARGO_PKG_VERSION")));
        if cfg.base_url.starts_with("http://") {
            builder = builder.tls_backend_preconfigured(trusting_nothing()?);
        }
        let http = builder.build().map_err(|e| http_client_error(&cfg.base_url, &e))?;
        let url = reqwest::Url::parse(&format!("{}/api/list_task", cfg.base_url))
            .map_err(|e| format!("api.base_url does not form a URL: {e}"))?;
        let rps = NonZeroU32::new(cfg.requests_per_second).unwrap_or(NonZeroU32::MIN);
        Ok(Client {
            http,
            url,
            decode: DecodeOptions { zone: cfg.local_time_zone, keep_url_query },
            inflight: Semaphore::new(cfg.concurrency),
            limiter: RateLimiter::direct(Quota::per_second(rps)),
            request_us: AtomicU64::new(0),
            pace: super::pace::Pace::new(cfg.requests_per_second, std::time::Instant::now()),
            cfg: cfg.clone(),
            clock,
            nonce: AtomicU64::new(0),
            stats: Arc::new(ApiStats::default()),
            observer,
            server_offset: AtomicI64::new(NO_OFFSET),
            offset_measured: std::sync::Mutex::new(None),
        })
    }

    /// `api.local_time_zone`, in which local-time strings are read.
    pub fn zone(&self) -> chrono::FixedOffset {
        self.cfg.local_time_zone
    }

    /// The API's own "now", from the `Date` header of its last response, projected to the
    /// client clock's `now`; `None` before any response carried one.
    pub fn api_now(&self, now: i64) -> Option<i64> {
        let offset = self.server_offset.load(Ordering::Relaxed);
        (offset != NO_OFFSET).then(|| now.saturating_add(offset))
    }

    /// The API's own "now" (see [`Client::api_now`]), asking with one small request when
    /// no response has told it yet. One try, no retry: a failure only means the caller
    /// plans by its own clock and the windows meet the failure themselves, except refused
    /// credentials, which stop everything at once.
    pub async fn probe_clock(&self, now: i64) -> Result<Option<i64>, ApiError> {
        if self.api_now(now).is_none() || self.clock_stepped(now) {
            let probe = PageQuery { start: now - 60, end: now, offset: 0, count: 1 };
            let (result, took) = self.try_once(probe).await;
            self.ended(if result.is_ok() { RequestOutcome::Ok } else { RequestOutcome::Failed }, took);
            match result {
                Err(TryError::Fatal(e @ ApiError::AuthRefused { .. })) => return Err(e),
                Err(_) => tracing::debug!("Could not ask the API for its clock; planning by ours"),
                Ok(_) => {}
            }
        }
        Ok(self.api_now((self.clock)()))
    }

    /// Whether our clock moved by more than [`CLOCK_STEP_S`] apart from the monotonic clock
    /// since the API's offset was measured: the offset is stale, and planning by it could
    /// move the cursor past the API's now (then lose what lies between when the clock is
    /// set back).
    pub fn clock_stepped(&self, now: i64) -> bool {
        let measured = *self.offset_measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        measured.is_some_and(|(wall, at)| ((now - wall) - at.elapsed().as_secs() as i64).abs() > CLOCK_STEP_S)
    }

    /// Whether requests take long enough ([`FAR_SERVER`] or more, smoothed) that waiting
    /// for answers, not merging them, bounds a pass.
    pub fn server_is_far(&self) -> bool {
        self.request_us.load(Ordering::Relaxed) >= FAR_SERVER.as_micros() as u64
    }

    /// Request slots (`api.concurrency`) not in use right now.
    pub fn idle_slots(&self) -> usize {
        self.inflight.available_permits()
    }

    /// The configured page size (`count`).
    pub fn page_size(&self) -> u32 {
        self.cfg.page_size
    }

    /// Fetches one page, retrying transient failures within the budget.
    pub async fn list_page(&self, query: PageQuery) -> Result<Page, ApiError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.cfg.retry_min_delay)
            .with_max_delay(self.cfg.retry_max_delay)
            .with_max_times(self.cfg.max_retries)
            .build();
        let mut attempts = 0;
        // Whether every try so far got an answer that could not be decoded.
        let mut undecodable = true;
        loop {
            attempts += 1;
            let (result, took) = self.try_once(query).await;
            undecodable &= matches!(result, Err(TryError::Undecodable(_)));
            let failed = |e: ApiError| {
                self.ended(RequestOutcome::Failed, took);
                Err(e)
            };
            let (reason, retry_after, cause) = match result {
                Ok(page) => {
                    self.ended(RequestOutcome::Ok, took);
                    self.stats.pages.fetch_add(1, Ordering::Relaxed);
                    self.stats.nulled_fields.fetch_add(page.nulled_fields, Ordering::Relaxed);
                    return Ok(page);
                }
                Err(TryError::Fatal(e)) => return failed(e),
                Err(TryError::TooLarge) => {
                    return failed(ApiError::TooLarge { query, cap: self.cfg.max_body_bytes });
                }
                Err(TryError::UnknownCode { code, msg }) if attempts >= UNKNOWN_CODE_TRIES => {
                    return failed(ApiError::Permanent { query, code, msg });
                }
                Err(TryError::UnknownCode { code, msg }) => {
                    (format!("API code {code}: \"{msg}\""), None, RetryCause::UnknownCode)
                }
                Err(TryError::Transient { reason, retry_after }) => (reason, retry_after, RetryCause::Transient),
                Err(TryError::Throttled { retry_after }) => {
                    ("HTTP 429 Too Many Requests".to_string(), retry_after, RetryCause::Throttled)
                }
                Err(TryError::Undecodable(reason)) => (reason, None, RetryCause::Undecodable),
            };
            let Some(delay) = delays.next() else {
                return failed(ApiError::Exhausted { query, attempts, last: reason, undecodable });
            };
            self.ended(RequestOutcome::Retried(cause), took);
            let delay = delay.max(retry_after.unwrap_or_default()).min(self.cfg.retry_max_delay);
            tracing::debug!(%query, attempt = attempts, delay_ms = delay.as_millis() as u64, %reason, "Retrying a page after a transient failure");
            tokio::time::sleep(delay).await;
        }
    }

    /// Counts one request where it is counted: this client's stats and the observer.
    fn ended(&self, outcome: RequestOutcome, took: Duration) {
        if matches!(outcome, RequestOutcome::Retried(_)) {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
        }
        self.observer.request_ended(outcome, took);
        self.observer.paced(self.pace.rate().unwrap_or(f64::from(self.cfg.requests_per_second)));
    }

    /// One try of `query`, and how long its exchange took.
    async fn try_once(&self, query: PageQuery) -> (Result<Page, TryError>, Duration) {
        let _permit = self.inflight.acquire().await.expect("the semaphore is never closed");
        self.limiter.until_ready().await;
        // Unpaced, the slot is now: a timer would still wait for the timer wheel's next
        // millisecond tick (measured: 0.83 s became 1.26 s for a 100k-task backfill).
        let now = std::time::Instant::now();
        let slot = self.pace.slot(now);
        if slot > now {
            tokio::time::sleep_until(slot.into()).await;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        // Timed from the request leaving to its body read: waits for a permit or the rate
        // limit are ours, not the API's.
        let started = std::time::Instant::now();
        let body = self.exchange(query, started).await;
        let took = started.elapsed();
        let sample = took.as_micros() as u64;
        // An 1/8 moving average; a lost race between two updates loses one sample.
        let old = self.request_us.load(Ordering::Relaxed);
        self.request_us.store(if old == 0 { sample } else { old - old / 8 + sample / 8 }, Ordering::Relaxed);
        let result = body.and_then(|body| match decode_page(&body, &self.decode) {
            Ok(Envelope::Page(page)) => Ok(page),
            Ok(Envelope::ApiError { code, msg }) => Err(classify_code(query, code, msg)),
            Err(e) => Err(TryError::Undecodable(e.to_string())),
        });
        (result, took)
    }

    /// One HTTP exchange: the signed request out, the body of a 200 back.
    async fn exchange(&self, query: PageQuery, sent: std::time::Instant) -> Result<Vec<u8>, TryError> {
        let response = self
            .request(query)
            .send()
            .await
            .map_err(|e| TryError::Transient { reason: describe(&e), retry_after: None })?;
        self.note_server_date(&response);
        self.stats.touch();
        let status = response.status();
        let throttled = status == StatusCode::TOO_MANY_REQUESTS;
        if let Some(rate) = self.pace.answered(throttled, sent, std::time::Instant::now()) {
            tracing::info!(
                requests_per_second = format!("{rate:.1}"),
                "The API limits our rate; pacing requests below it"
            );
        }
        if status != StatusCode::OK {
            return Err(classify_status(query, status, retry_after(&response)));
        }
        self.read_capped(response).await
    }

    /// Keeps the offset of the server's `Date` header from our clock.
    fn note_server_date(&self, response: &reqwest::Response) {
        let date = response.headers().get(reqwest::header::DATE).and_then(|v| v.to_str().ok());
        if let Some(server) = date.and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok()) {
            let now = (self.clock)();
            self.server_offset.store(server.timestamp() - now, Ordering::Relaxed);
            *self.offset_measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((now, std::time::Instant::now()));
        }
    }

    /// The signed GET request for `query`.
    fn request(&self, query: PageQuery) -> reqwest::RequestBuilder {
        let params: [(&str, String); 4] = [
            ("start_time", query.start.to_string()),
            ("end_time", query.end.to_string()),
            ("start_num", query.offset.to_string()),
            ("count", query.count.to_string()),
        ];
        let mut builder = self.http.get(self.url.clone()).query(&params);
        if let Auth::Visionular { access_key_id, secret, variant } = &self.cfg.auth {
            let date = sign::http_date((self.clock)());
            let nonce = format!("{:x}{:08x}", std::process::id(), self.nonce.fetch_add(1, Ordering::Relaxed));
            let headers = [("Date", date.as_str()), ("X-Wz-Nonce", nonce.as_str())];
            let request = Request {
                method: "GET",
                content_md5: "",
                content_type: "",
                date: &date,
                headers: &headers,
                path: self.url.path(),
                query: &params,
            };
            let signature = sign::signature(secret.expose(), &sign::string_to_sign(*variant, &request));
            builder = builder.header("Date", &date).header("X-Wz-Nonce", &nonce);
            // Marked sensitive, so that no debug output of the request (ours, reqwest's or
            // hyper's) ever prints it.
            if let Ok(mut value) =
                reqwest::header::HeaderValue::from_str(&sign::authorization(access_key_id, &signature))
            {
                value.set_sensitive(true);
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        builder
    }

    /// Reads the body, refusing one larger than `api.max_body_bytes`.
    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, TryError> {
        let cap = self.cfg.max_body_bytes;
        if response.content_length().is_some_and(|n| n as usize > cap) {
            return Err(TryError::TooLarge);
        }
        // Sized once from Content-Length, instead of growing a page's ~80 KB by doubling.
        let expected = response.content_length().map_or(0, |n| n as usize).min(cap);
        let mut body = Vec::with_capacity(expected);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > cap => return Err(TryError::TooLarge),
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(TryError::Transient {
                        reason: format!("the body broke off: {}", describe(&e)),
                        retry_after: None,
                    });
                }
            }
        }
    }
}
