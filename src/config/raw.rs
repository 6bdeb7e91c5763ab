//! The config file as written: TOML shapes with their defaults, before validation
//! (`config/mod.rs` turns them into a [`super::Config`]). Unknown keys are refused here.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[api]`: how to reach and call `list_task` (required).
    pub(super) api: RawApi,
    /// `[sync]`: what the passes cover; all defaults when absent.
    #[serde(default)]
    pub(super) sync: RawSync,
    /// `[storage]`: where the dataset and the state database live; all defaults when absent.
    #[serde(default)]
    pub(super) storage: RawStorage,
    /// `[metrics]`: the Prometheus endpoint; off when absent.
    #[serde(default)]
    pub(super) metrics: RawMetrics,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// `metrics.listen`: address and port to serve `GET /metrics` on; absent: off.
    pub(super) listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    /// `api.base_url`: scheme, host and optional path prefix; requests go to `{base_url}/api/list_task`.
    pub(super) base_url: String,
    /// `api.page_size`: records asked per page (`count`).
    #[serde(default = "d_page_size")]
    pub(super) page_size: u32,
    /// `api.timeout`: per-request timeout, a duration string like `"30s"`.
    #[serde(default = "d_timeout")]
    pub(super) timeout: String,
    /// `api.concurrency`: requests in flight at most.
    #[serde(default = "d_concurrency")]
    pub(super) concurrency: usize,
    /// `api.requests_per_second`: client-side rate limit.
    #[serde(default = "d_rps")]
    pub(super) requests_per_second: u32,
    /// `api.auth`: `"visionular"` (the vendor's AK/SK signature) or `"none"`.
    #[serde(default = "d_auth")]
    pub(super) auth: String,
    /// `api.access_key_id`: the AK (not secret); required when `auth = "visionular"`.
    pub(super) access_key_id: Option<String>,
    /// `api.secret_key_file`: file holding the SK; a relative path is looked up in
    /// `$CREDENTIALS_DIRECTORY`. Exclusive with `secret_key_env`.
    pub(super) secret_key_file: Option<PathBuf>,
    /// `api.secret_key_env`: name of the environment variable holding the SK (instead of a file).
    pub(super) secret_key_env: Option<String>,
    /// `api.local_time_zone`: UTC offset (`"+08:00"`) of `"YYYY-MM-DD hh:mm:ss"` times in responses.
    #[serde(default = "d_zone")]
    pub(super) local_time_zone: String,
    /// `api.signature_variant`: string-to-sign formula: `"standard"`, `"trailing-newline"` or
    /// `"legacy-ampersand"`.
    #[serde(default = "d_variant")]
    pub(super) signature_variant: String,
    /// `api.max_offset`: deepest record offset the server serves; windows with a larger `total` are split.
    #[serde(default = "d_max_offset")]
    pub(super) max_offset: u64,
    /// `api.max_retries`: retries of one request on transient failures before the run stops.
    #[serde(default = "d_retries")]
    pub(super) max_retries: usize,
    /// `api.retry_min_delay`: first backoff delay (duration string); doubles with jitter.
    #[serde(default = "d_retry_min")]
    pub(super) retry_min_delay: String,
    /// `api.retry_max_delay`: longest wait between two tries, `Retry-After` included (duration string).
    #[serde(default = "d_retry_max")]
    pub(super) retry_max_delay: String,
    /// `api.max_body_bytes`: largest response body accepted, in bytes; larger is a broken response.
    #[serde(default = "d_max_body")]
    pub(super) max_body_bytes: usize,
    /// `api.repage_attempts`: extra pagings of a window whose distinct task count is short of `total`.
    #[serde(default = "d_repage")]
    pub(super) repage_attempts: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    /// `sync.start`: where the very first incremental pass begins (date, RFC 3339 or unix seconds).
    pub(super) start: Option<String>,
    /// `sync.settle`: how much of the newest past is never asked about (duration string): it still changes.
    #[serde(default = "d_settle")]
    pub(super) settle: String,
    /// `sync.lookback`: how much before the cursor every incremental pass re-scans (duration string).
    #[serde(default = "d_lookback")]
    pub(super) lookback: String,
    /// `sync.reopen_max_age`: stop re-checking unfinished tasks older than this (duration string).
    #[serde(default = "d_reopen")]
    pub(super) reopen_max_age: String,
    /// `sync.schedule`: cron expression for `run`, seconds first (5 fields get a leading `0`).
    #[serde(default = "d_schedule")]
    pub(super) schedule: String,
    /// `sync.reconcile_every`: how often the recent past is re-counted against the API's totals.
    #[serde(default = "d_reconcile_every")]
    pub(super) reconcile_every: String,
    /// `sync.reconcile_window`: how far back reconciliation re-counts; `"0s"` turns it off.
    #[serde(default = "d_reconcile_window")]
    pub(super) reconcile_window: String,
    /// `sync.give_up_after`: a range left behind this long is given up (loudly) and the cursor moves on.
    #[serde(default = "d_give_up_after")]
    pub(super) give_up_after: String,
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync {
            start: None,
            settle: d_settle(),
            lookback: d_lookback(),
            reopen_max_age: d_reopen(),
            schedule: d_schedule(),
            reconcile_every: d_reconcile_every(),
            reconcile_window: d_reconcile_window(),
            give_up_after: d_give_up_after(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    /// `storage.output_dir`: root of the dataset, a local path or `s3://bucket/prefix`.
    #[serde(default = "d_output")]
    pub(super) output_dir: PathBuf,
    /// `storage.state_db`: path of the SQLite checkpoint database.
    #[serde(default = "d_state")]
    pub(super) state_db: PathBuf,
    /// `storage.keep_url_query`: keep presigned query strings in string columns (off: they grant access).
    #[serde(default)]
    pub(super) keep_url_query: bool,
    /// `storage.history`: also keep every observed version of each task in `task_history/`.
    #[serde(default = "d_true")]
    pub(super) history: bool,
    /// `[storage.s3]`, for an `s3://` output_dir.
    pub(super) s3: Option<super::s3::RawS3>,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage { output_dir: d_output(), state_db: d_state(), keep_url_query: false, history: true, s3: None }
    }
}

fn d_true() -> bool {
    true
}

fn d_page_size() -> u32 {
    50
}
fn d_timeout() -> String {
    "30s".into()
}
fn d_concurrency() -> usize {
    4
}
fn d_rps() -> u32 {
    10
}
fn d_auth() -> String {
    "visionular".into()
}
fn d_zone() -> String {
    "+08:00".into()
}
fn d_variant() -> String {
    "standard".into()
}
fn d_max_offset() -> u64 {
    10_000
}
fn d_retries() -> usize {
    8
}
fn d_retry_min() -> String {
    "500ms".into()
}
fn d_retry_max() -> String {
    "30s".into()
}
fn d_max_body() -> usize {
    16 << 20
}
fn d_repage() -> u32 {
    3
}
fn d_settle() -> String {
    "2m".into()
}
fn d_lookback() -> String {
    "1h".into()
}
fn d_reopen() -> String {
    "3d".into()
}
fn d_reconcile_every() -> String {
    "6h".into()
}
fn d_reconcile_window() -> String {
    "30d".into()
}
fn d_give_up_after() -> String {
    "7d".into()
}
fn d_schedule() -> String {
    "0 */5 * * * *".into()
}
fn d_output() -> PathBuf {
    "/var/lib/tasksync/parquet".into()
}
fn d_state() -> PathBuf {
    "/var/lib/tasksync/state.db".into()
}
