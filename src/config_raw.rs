//! The config file as written: TOML shapes with their defaults, before validation
//! (`config.rs` turns them into a [`super::Config`]). Unknown keys are refused here.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) sync: RawSync,
    #[serde(default)]
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) base_url: String,
    #[serde(default = "d_page_size")]
    pub(super) page_size: u32,
    #[serde(default = "d_timeout")]
    pub(super) timeout: String,
    #[serde(default = "d_concurrency")]
    pub(super) concurrency: usize,
    #[serde(default = "d_rps")]
    pub(super) requests_per_second: u32,
    #[serde(default = "d_auth")]
    pub(super) auth: String,
    pub(super) access_key_id: Option<String>,
    pub(super) secret_key_file: Option<PathBuf>,
    pub(super) secret_key_env: Option<String>,
    #[serde(default = "d_zone")]
    pub(super) local_time_zone: String,
    #[serde(default = "d_variant")]
    pub(super) signature_variant: String,
    #[serde(default = "d_max_offset")]
    pub(super) max_offset: u64,
    #[serde(default = "d_retries")]
    pub(super) max_retries: usize,
    #[serde(default = "d_retry_min")]
    pub(super) retry_min_delay: String,
    #[serde(default = "d_retry_max")]
    pub(super) retry_max_delay: String,
    #[serde(default = "d_max_body")]
    pub(super) max_body_bytes: usize,
    #[serde(default = "d_repage")]
    pub(super) repage_attempts: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) start: Option<String>,
    #[serde(default = "d_settle")]
    pub(super) settle: String,
    #[serde(default = "d_lookback")]
    pub(super) lookback: String,
    #[serde(default = "d_reopen")]
    pub(super) reopen_max_age: String,
    #[serde(default = "d_schedule")]
    pub(super) schedule: String,
    #[serde(default = "d_reconcile_every")]
    pub(super) reconcile_every: String,
    #[serde(default = "d_reconcile_window")]
    pub(super) reconcile_window: String,
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
    #[serde(default = "d_output")]
    pub(super) output_dir: PathBuf,
    #[serde(default = "d_state")]
    pub(super) state_db: PathBuf,
    #[serde(default)]
    pub(super) keep_url_query: bool,
    /// `[storage.s3]`, for an `s3://` output_dir.
    pub(super) s3: Option<super::s3::RawS3>,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage { output_dir: d_output(), state_db: d_state(), keep_url_query: false, s3: None }
    }
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
