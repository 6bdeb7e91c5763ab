//! The TOML configuration of docs/contract.md, loaded into a validated [`Config`].
//!
//! Every error is one sentence naming the file, the key and what is wrong. The secret key
//! is read here (from a file or an environment variable) into a [`Secret`], whose `Debug`
//! never shows it.
//!
//! Rooms: `raw` (the file as written, every key optional), `s3` (an `s3://` output_dir and
//! `[storage.s3]`), `error` (one sentence per mistake, naming file, line and key),
//! `secret` (a value that never prints).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::FixedOffset;

mod error;
mod secret;
pub use error::ConfigError;
pub use secret::Secret;

/// Which of the documented string-to-sign formulas to use (`api.signature_variant`); the
/// signing itself lives in `source::sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `VERB\nMD5\nTYPE\nDATE\nHEADERS\nRESOURCE` (the main page's formula).
    Standard,
    /// As `Standard`, plus a trailing `\n` (one worked example).
    TrailingNewline,
    /// `VERB&path&k=v&...` (an older page).
    LegacyAmpersand,
}

impl Variant {
    /// Parses the config spelling.
    pub fn parse(text: &str) -> Option<Variant> {
        match text {
            "standard" => Some(Variant::Standard),
            "trailing-newline" => Some(Variant::TrailingNewline),
            "legacy-ampersand" => Some(Variant::LegacyAmpersand),
            _ => None,
        }
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No Authorization header (the simulator without keys, a test double).
    None,
    /// The vendor's AK/SK HMAC-SHA1 signature.
    Visionular {
        /// `api.access_key_id`: named in every Authorization header.
        access_key_id: String,
        /// The SecretAccessKey, from `api.secret_key_file` or `api.secret_key_env`.
        secret: Secret,
        /// `api.signature_variant`: which string-to-sign the vendor's gateway expects.
        variant: Variant,
    },
}

/// `[api]`: how to talk to `list_task`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Scheme, host and optional path prefix; requests go to `{base_url}/api/list_task`.
    pub base_url: String,
    /// The `count` parameter; servers may clamp it, the walker copes.
    pub page_size: u32,
    /// Per-request timeout, connect to last body byte.
    pub timeout: Duration,
    /// Requests in flight at most, across all windows.
    pub concurrency: usize,
    /// Client-side rate limit (requests per second).
    pub requests_per_second: u32,
    /// Signature scheme and credentials.
    pub auth: Auth,
    /// Zone of `"YYYY-MM-DD hh:mm:ss"` times in responses.
    pub local_time_zone: FixedOffset,
    /// Deepest record offset the server serves; windows with a larger `total` are split.
    pub max_offset: u64,
    /// Retries of one request on transient failures before the run stops.
    pub max_retries: usize,
    /// First backoff delay; doubles with jitter up to `retry_max_delay`.
    pub retry_min_delay: Duration,
    /// Longest wait between two tries, `Retry-After` included.
    pub retry_max_delay: Duration,
    /// Largest response body accepted; larger is treated as a broken response.
    pub max_body_bytes: usize,
    /// How often a window whose distinct task count is short of `total` is paged again.
    pub repage_attempts: u32,
}

/// `[sync]`: what the passes cover.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Where the first incremental pass begins (unix seconds), if configured.
    pub start: Option<i64>,
    /// Never ask about the newest `settle`: it is still changing.
    pub settle: Duration,
    /// Re-scan this much before the cursor on every incremental pass.
    pub lookback: Duration,
    /// Stop re-checking unfinished tasks older than this.
    pub reopen_max_age: Duration,
    /// Cron expression (6 fields, seconds first) for `run`.
    pub schedule: String,
    /// How often the recent past is re-counted against the API's totals.
    pub reconcile_every: Duration,
    /// How far back a reconciliation re-counts; zero turns reconciliation off.
    pub reconcile_window: Duration,
    /// A range left behind longer than this is given up, loudly.
    pub give_up_after: Duration,
}

/// `[storage]`: where data and state live.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Root of the dataset; partitions go under `{output_dir}/tasks/`.
    pub output_dir: PathBuf,
    /// The SQLite checkpoint database.
    pub state_db: PathBuf,
    /// Keep presigned query strings in `input_url` / `output_url` (off: they grant access).
    pub keep_url_query: bool,
    /// Also keep every observed version of each task in `{output_dir}/task_history/`
    /// (SCD type 2, `transform/versions.rs`); off writes nothing there.
    pub history: bool,
    /// The object store when `output_dir` was `s3://bucket/prefix`; `output_dir` is then
    /// the local work directory (staging and locks) beside the state database.
    pub s3: Option<S3Config>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served while `run` runs; `None`: off. A one-off `sync`
    /// leaves this address to the service and serves only at its `--metrics-listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// What set `listen` ("metrics.listen" or "--metrics-listen"), for the error that names it.
    pub key: &'static str,
}

impl MetricsConfig {
    /// The key of the config file.
    pub const KEY: &'static str = "metrics.listen";
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[api]`: how to talk to `list_task`.
    pub api: ApiConfig,
    /// `[sync]`: what the passes cover.
    pub sync: SyncConfig,
    /// `[storage]`: where data and state live.
    pub storage: StorageConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
}

mod raw;
mod s3;
use raw::{RawApi, RawConfig, RawSync};
pub use s3::{ConditionalPut, S3Config, S3Secret};

impl Config {
    /// Reads and validates the file at `path`, secret key included: for commands that
    /// call the API.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, SecretKey::Load)
    }

    /// Reads and validates the file at `path` without reading the secret key (its file
    /// may exist only inside the running service): for the read-only commands.
    pub fn load_without_secret(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, SecretKey::Skip)
    }

    fn load_with(path: &Path, secret: SecretKey) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Config::parse_with(&text, path, &|name| std::env::var(name).ok(), secret)
    }

    /// For unit tests: an unsigned config whose state database and output live in `dir`,
    /// with the extra TOML `sections` (a `[sync]` table) appended.
    #[cfg(test)]
    pub(crate) fn in_dir(dir: &Path, sections: &str) -> Config {
        let text = format!(
            "[api]\nbase_url = \"http://x\"\nauth = \"none\"\n{sections}\n[storage]\nstate_db = \"{0}/state.db\"\noutput_dir = \"{0}/out\"\n",
            dir.display()
        );
        Config::parse(&text, Path::new("t.toml"), &|_| None).expect("the test config is valid")
    }

    /// Parses and validates `text`; `env` looks up `secret_key_env` (injected for tests).
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, env, SecretKey::Load)
    }

    /// [`Config::parse`], reading the secret key or not.
    pub fn parse_with(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        secret: SecretKey,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        let v = Validator { path, secret };
        let api = v.api(raw.api, env)?;
        let sync = v.sync(raw.sync)?;
        let storage = v.storage(raw.storage, env)?;
        let metrics =
            MetricsConfig { listen: raw.metrics.listen.map(|l| v.listen(&l)).transpose()?, key: MetricsConfig::KEY };
        Ok(Config { api, sync, storage, metrics })
    }
}

/// Turns a TOML/serde error into one sentence with the line and the key it is about.
fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let place = match e.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let key = line.split('=').next().unwrap_or("").trim();
            if line.contains('=') && !key.is_empty() {
                format!(" line {line_no} (key `{key}`)")
            } else {
                format!(" line {line_no}")
            }
        }
        None => String::new(),
    };
    let message = e.message().trim().replace('\n', " ");
    ConfigError::Parse { path: path.into(), place, message }
}

struct Validator<'a> {
    /// The file, named in every error.
    path: &'a Path,
    /// Whether the secret key is read.
    secret: SecretKey,
}

/// Whether loading a config reads the secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKey {
    /// Read it: the command calls the API.
    Load,
    /// Check that one source is named, read nothing: the command never calls the API.
    Skip,
}

impl Validator<'_> {
    fn bad(&self, key: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { path: self.path.into(), key, message: message.into() }
    }

    fn storage(&self, r: raw::RawStorage, env: &dyn Fn(&str) -> Option<String>) -> Result<StorageConfig, ConfigError> {
        let text = r.output_dir.to_string_lossy().into_owned();
        let (output_dir, s3) = match (s3::parse_s3_url(&text), r.s3) {
            (Some(url), raw) => {
                let url = url.map_err(|m| self.bad("storage.output_dir", m))?;
                let s3 = s3::validate(self.path, url, raw.unwrap_or_default(), env)?;
                let home = r.state_db.parent().map(Path::to_path_buf).unwrap_or_default();
                (home.join("s3-work"), Some(s3))
            }
            (None, Some(_)) => {
                return Err(self.bad("storage.s3", format!("applies only to an s3:// output_dir, not `{text}`")));
            }
            (None, None) => (r.output_dir, None),
        };
        Ok(StorageConfig { output_dir, state_db: r.state_db, keep_url_query: r.keep_url_query, history: r.history, s3 })
    }

    fn listen(&self, text: &str) -> Result<std::net::SocketAddr, ConfigError> {
        text.trim().parse().map_err(|_| {
            self.bad("metrics.listen", format!("is not an address and port like \"127.0.0.1:9464\" (`{text}`)"))
        })
    }

    fn duration(&self, key: &'static str, text: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(text.trim())
            .map_err(|e| self.bad(key, format!("is not a duration like \"90s\", \"5m\" or \"3d\" (`{text}`: {e})")))
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(
        &self,
        key: &'static str,
        v: T,
        lo: T,
        hi: T,
    ) -> Result<T, ConfigError> {
        if v < lo || v > hi { Err(self.bad(key, format!("must be between {lo} and {hi}, got {v}"))) } else { Ok(v) }
    }

    fn api(&self, r: RawApi, env: &dyn Fn(&str) -> Option<String>) -> Result<ApiConfig, ConfigError> {
        let base_url = r.base_url.trim().trim_end_matches('/').to_string();
        match reqwest::Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(self.bad(
                    "api.base_url",
                    format!("must be an http(s) URL like \"https://transcode.example.com\", got `{base_url}`"),
                ));
            }
        }
        let timeout = self.duration("api.timeout", &r.timeout)?;
        if timeout.is_zero() {
            return Err(self.bad("api.timeout", "must be more than zero"));
        }
        let retry_min_delay = self.duration("api.retry_min_delay", &r.retry_min_delay)?;
        let retry_max_delay = self.duration("api.retry_max_delay", &r.retry_max_delay)?;
        if retry_max_delay < retry_min_delay {
            return Err(self.bad("api.retry_max_delay", "must not be shorter than api.retry_min_delay"));
        }
        let local_time_zone =
            crate::time::parse_offset(&r.local_time_zone).map_err(|m| self.bad("api.local_time_zone", m))?;
        let auth = self.auth(&r, env)?;
        Ok(ApiConfig {
            base_url,
            page_size: self.range("api.page_size", r.page_size, 1, 10_000)?,
            timeout,
            concurrency: self.range("api.concurrency", r.concurrency, 1, 256)?,
            requests_per_second: self.range("api.requests_per_second", r.requests_per_second, 1, 100_000)?,
            auth,
            local_time_zone,
            max_offset: self.range("api.max_offset", r.max_offset, 1, u64::from(u32::MAX))?,
            max_retries: self.range("api.max_retries", r.max_retries, 0, 100)?,
            retry_min_delay,
            retry_max_delay,
            max_body_bytes: self.range("api.max_body_bytes", r.max_body_bytes, 1024, 1 << 30)?,
            repage_attempts: self.range("api.repage_attempts", r.repage_attempts, 0, 100)?,
        })
    }

    fn auth(&self, r: &RawApi, env: &dyn Fn(&str) -> Option<String>) -> Result<Auth, ConfigError> {
        match r.auth.as_str() {
            "none" => Ok(Auth::None),
            "visionular" => {
                let variant = Variant::parse(&r.signature_variant).ok_or_else(|| {
                    self.bad(
                        "api.signature_variant",
                        format!(
                            "must be \"standard\", \"trailing-newline\" or \"legacy-ampersand\", got `{}`",
                            r.signature_variant
                        ),
                    )
                })?;
                let access_key_id = r
                    .access_key_id
                    .clone()
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| self.bad("api.access_key_id", "is required when auth = \"visionular\""))?;
                let secret = self.secret(r, env)?;
                Ok(Auth::Visionular { access_key_id: access_key_id.trim().to_string(), secret, variant })
            }
            other => Err(self.bad("api.auth", format!("must be \"visionular\" or \"none\", got `{other}`"))),
        }
    }

    fn secret(&self, r: &RawApi, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
        let value = match (&r.secret_key_file, &r.secret_key_env) {
            (Some(_), Some(_)) => {
                return Err(self.bad("api.secret_key_file", "and api.secret_key_env are both set; keep one"));
            }
            (None, None) => {
                return Err(
                    self.bad("api.secret_key_file", "(or api.secret_key_env) is required when auth = \"visionular\"")
                );
            }
            _ if self.secret == SecretKey::Skip => return Ok(Secret::new(String::new())),
            (Some(file), None) => {
                let file = credential_path(file, env);
                std::fs::read_to_string(&file).map_err(|e| {
                    self.bad(
                        "api.secret_key_file",
                        format!("names {} which cannot be read: {}", file.display(), e.kind()),
                    )
                })?
            }
            (None, Some(name)) => env(name).ok_or_else(|| {
                self.bad("api.secret_key_env", format!("names the environment variable {name}, which is not set"))
            })?,
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(self.bad("api.secret_key_file", "gives an empty secret key"));
        }
        Ok(Secret::new(value))
    }

    fn sync(&self, r: RawSync) -> Result<SyncConfig, ConfigError> {
        let start = match r.start {
            Some(s) => Some(crate::time::parse_instant(&s).map_err(|m| self.bad("sync.start", m))?),
            None => None,
        };
        let schedule = normalize_schedule(&r.schedule).map_err(|m| self.bad("sync.schedule", m))?;
        Ok(SyncConfig {
            start,
            settle: self.duration("sync.settle", &r.settle)?,
            lookback: self.duration("sync.lookback", &r.lookback)?,
            reopen_max_age: self.duration("sync.reopen_max_age", &r.reopen_max_age)?,
            schedule,
            reconcile_every: self.duration("sync.reconcile_every", &r.reconcile_every)?,
            reconcile_window: self.duration("sync.reconcile_window", &r.reconcile_window)?,
            give_up_after: self.duration("sync.give_up_after", &r.give_up_after)?,
        })
    }
}

/// A relative `secret_key_file` names a systemd credential: it is looked up in
/// `$CREDENTIALS_DIRECTORY` (set by `LoadCredential=`), so one config serves every unit
/// (each has its own credentials directory) and a shell that points the variable at the
/// credential's source.
fn credential_path(file: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("CREDENTIALS_DIRECTORY") {
        Some(dir) if file.is_relative() => Path::new(&dir).join(file),
        _ => file.to_path_buf(),
    }
}

/// Accepts 6-field cron (seconds first) and, for convenience, 5-field cron (prefixed `0 `).
pub fn normalize_schedule(text: &str) -> Result<String, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let expr = match fields.len() {
        6 | 7 => fields.join(" "),
        5 => format!("0 {}", fields.join(" ")),
        n => {
            return Err(format!(
                "must be a cron expression of 6 fields, seconds first (\"0 */5 * * * *\"), got {n} fields in `{text}`"
            ));
        }
    };
    // Parse it exactly as the scheduler will, so `run` never fails on it later.
    tokio_cron_scheduler::Job::new_async(expr.as_str(), |_, _| Box::pin(async {})).map(|_| expr.clone()).map_err(|_| {
        format!(
            "is not a cron expression the scheduler accepts: `{text}` (6 fields, seconds first, e.g. \"0 */5 * * * *\")"
        )
    })
}

#[cfg(test)]
mod tests;
