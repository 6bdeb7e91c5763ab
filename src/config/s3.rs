//! `storage.output_dir = "s3://bucket/prefix"` and its `[storage.s3]` table, validated.
//! The secret access key is named here and read only when a store is opened, so that
//! commands that never touch the store (`status`) do not need it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;
use super::secret::Secret;

/// `[storage.s3]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawS3 {
    /// `storage.s3.endpoint`: the store's http(s) URL; absent: AWS's own for the region.
    endpoint: Option<String>,
    /// `storage.s3.region`: the bucket's region (default `us-east-1`).
    region: Option<String>,
    /// `storage.s3.access_key_id` (not secret); absent: no credentials of our own.
    access_key_id: Option<String>,
    /// `storage.s3.secret_access_key_file`: file holding the secret key; a relative path is
    /// looked up in `$CREDENTIALS_DIRECTORY`.
    secret_access_key_file: Option<PathBuf>,
    /// `storage.s3.secret_access_key_env`: name of the environment variable holding the secret key.
    secret_access_key_env: Option<String>,
    /// `storage.s3.allow_http`: accept a plain `http://` endpoint (default false).
    #[serde(default)]
    allow_http: bool,
    /// `storage.s3.virtual_hosted_style`: `bucket.host` URLs instead of `host/bucket` (OSS needs it).
    #[serde(default)]
    virtual_hosted_style: bool,
    /// `storage.s3.conditional_put`: `"etag"` (default) or `"none"` for stores without conditional writes.
    conditional_put: Option<String>,
}

/// Whether replacing a partition is conditional on what was read (`conditional_put`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalPut {
    /// `If-None-Match: *` / `If-Match: <etag>`: writers on one prefix never lose data.
    Etag,
    /// Plain PUTs, for stores without conditional writes (Aliyun OSS, Huawei OBS): one
    /// writer per prefix.
    None,
}

/// Where the secret access key is read from when a store is opened.
#[derive(Debug, Clone)]
pub enum S3Secret {
    /// A file (a relative one from `$CREDENTIALS_DIRECTORY`, as for the API's secret).
    File(PathBuf),
    /// An environment variable's name.
    Env(String),
    /// No key configured: the store is reached without credentials (or by the
    /// environment's own, as `object_store` finds them).
    Anonymous,
}

impl S3Secret {
    /// Reads the secret; the error names the key to fix, never the value.
    pub fn load(&self) -> Result<Secret, String> {
        let value = match self {
            S3Secret::File(file) => std::fs::read_to_string(file).map_err(|e| {
                format!("storage.s3.secret_access_key_file names {} which cannot be read: {}", file.display(), e.kind())
            })?,
            S3Secret::Env(name) => std::env::var(name).map_err(|_| {
                format!("storage.s3.secret_access_key_env names the environment variable {name}, which is not set")
            })?,
            S3Secret::Anonymous => return Ok(Secret::new(String::new())),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err("storage.s3's secret access key is empty".into());
        }
        Ok(Secret::new(value))
    }
}

/// A validated S3-compatible output.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket of `s3://bucket/prefix`.
    pub bucket: String,
    /// The prefix (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// `storage.s3.endpoint`; `None`: AWS's own for the region.
    pub endpoint: Option<String>,
    /// `storage.s3.region` (default `us-east-1`).
    pub region: String,
    /// `storage.s3.access_key_id` (not secret).
    pub access_key_id: Option<String>,
    /// Where the secret access key comes from.
    pub secret: S3Secret,
    /// `storage.s3.allow_http` (default false).
    pub allow_http: bool,
    /// `storage.s3.virtual_hosted_style` (OSS needs it).
    pub virtual_hosted_style: bool,
    /// `storage.s3.conditional_put`.
    pub conditional_put: ConditionalPut,
}

impl S3Config {
    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// `s3://bucket/prefix` into (bucket, prefix); `None` when `text` is not an s3 URL.
pub fn parse_s3_url(text: &str) -> Option<Result<(String, String), String>> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || bucket.contains(|c: char| c.is_whitespace()) {
        return Some(Err(format!("`{text}` names no bucket: write s3://bucket/prefix")));
    }
    Some(Ok((bucket.to_string(), prefix.trim_matches('/').to_string())))
}

/// Validates `[storage.s3]` for an `s3://` output; `file` is the config file, `env` looks
/// up `CREDENTIALS_DIRECTORY`.
pub(super) fn validate(
    file: &Path,
    url: (String, String),
    raw: RawS3,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<S3Config, ConfigError> {
    let bad = |key: &'static str, message: String| ConfigError::Invalid { path: file.into(), key, message };
    let conditional_put = match raw.conditional_put.as_deref().unwrap_or("etag") {
        "etag" => ConditionalPut::Etag,
        "none" => ConditionalPut::None,
        other => return Err(bad("storage.s3.conditional_put", format!("must be \"etag\" or \"none\", got `{other}`"))),
    };
    let secret = match (raw.secret_access_key_file, raw.secret_access_key_env, &raw.access_key_id) {
        (Some(_), Some(_), _) => {
            return Err(bad(
                "storage.s3.secret_access_key_file",
                "and secret_access_key_env are both set; keep one".into(),
            ));
        }
        (Some(f), None, Some(_)) => S3Secret::File(match env("CREDENTIALS_DIRECTORY") {
            Some(dir) if f.is_relative() => Path::new(&dir).join(f),
            _ => f,
        }),
        (None, Some(name), Some(_)) => S3Secret::Env(name),
        (None, None, Some(_)) => {
            return Err(bad(
                "storage.s3.secret_access_key_file",
                "(or secret_access_key_env) is required with storage.s3.access_key_id; the key itself never goes in this file".into(),
            ));
        }
        (Some(_), _, None) | (_, Some(_), None) => {
            return Err(bad("storage.s3.access_key_id", "is required with a secret access key".into()));
        }
        (None, None, None) => S3Secret::Anonymous,
    };
    if let Some(e) = &raw.endpoint
        && !(e.starts_with("https://") || e.starts_with("http://"))
    {
        return Err(bad(
            "storage.s3.endpoint",
            format!("must be a URL like https://s3.us-east-1.amazonaws.com, got `{e}`"),
        ));
    }
    if raw.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")) && !raw.allow_http {
        return Err(bad("storage.s3.endpoint", "is plain http: set storage.s3.allow_http = true to allow it".into()));
    }
    Ok(S3Config {
        bucket: url.0,
        prefix: url.1,
        endpoint: raw.endpoint,
        region: raw.region.unwrap_or_else(|| "us-east-1".into()),
        access_key_id: raw.access_key_id.map(|k| k.trim().to_string()),
        secret,
        allow_http: raw.allow_http,
        virtual_hosted_style: raw.virtual_hosted_style,
        conditional_put,
    })
}
