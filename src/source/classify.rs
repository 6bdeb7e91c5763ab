//! How one exchange with the API went wrong, before the retry policy decides: an HTTP
//! status or an API code classified as transient, throttled, fatal or unknown
//! ([`TryError`]), a reqwest error in one phrase, and why the HTTP client could not start.

use std::time::Duration;

use reqwest::StatusCode;

use super::{ApiError, PageQuery};

/// One try's failure, before the retry policy decides.
pub(super) enum TryError {
    Transient {
        /// What went wrong, for the log and the final error.
        reason: String,
        /// The server's `Retry-After`, if it sent one: the next try waits at least this long.
        retry_after: Option<Duration>,
    },
    /// HTTP 429: transient, and a sign of a rate limit below ours.
    Throttled {
        /// The server's `Retry-After`, if it sent one: the next try waits at least this long.
        retry_after: Option<Duration>,
    },
    Fatal(ApiError),
    UnknownCode {
        /// The API's `code`, none the client knows: retried a few times, then taken as permanent.
        code: i64,
        /// The API's `msg` with it (presigned URLs scrubbed).
        msg: String,
    },
    /// A body that is not a `list_task` response: retried like a transient failure, but
    /// when it persists it is this window's problem, not the API's as a whole.
    Undecodable(String),
    /// A body larger than `api.max_body_bytes`: asking again for as many records cannot
    /// help; the caller asks for fewer.
    TooLarge,
}

/// The TLS configuration of a client whose API is plain HTTP: no root certificates, so it
/// loads none from the host (a minimal image has none) and trusts no server: a redirect to
/// https fails instead of being trusted blindly.
pub(super) fn trusting_nothing() -> Result<rustls::ClientConfig, String> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
}

/// Why the HTTP client could not start, in a sentence an operator can act on. Without any
/// CA certificate on the host reqwest says only "builder error"; its cause is named here,
/// with where they were looked for and the package that provides them.
pub(super) fn http_client_error(base_url: &str, e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    if causes.iter().any(|c| c.contains("No CA certificates")) {
        let tried = match (std::env::var("SSL_CERT_FILE"), std::env::var("SSL_CERT_DIR")) {
            (Ok(file), _) => format!("SSL_CERT_FILE={file}"),
            (_, Ok(dir)) => format!("SSL_CERT_DIR={dir}"),
            _ => "/etc/ssl/certs/ca-certificates.crt and /etc/ssl/certs".to_string(),
        };
        return format!(
            "cannot start the HTTP client for api.base_url {base_url}: no CA certificate could be loaded from {tried}, \
             so no https server can be verified; install the ca-certificates package (Debian: apt install ca-certificates)"
        );
    }
    let detail = causes.last().map(|c| format!(" ({c})")).unwrap_or_default();
    format!("cannot start the HTTP client: {e}{detail}")
}

/// A reqwest error in one phrase, without the URL's query (it holds no secret, but is noise).
pub(super) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the body broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_string() } else { format!("{kind} ({detail})") }
}

pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    let wait = when.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(0) as u64))
}

pub(super) fn classify_status(query: PageQuery, status: StatusCode, retry_after: Option<Duration>) -> TryError {
    let code = i64::from(status.as_u16());
    match status.as_u16() {
        429 => TryError::Throttled { retry_after },
        408 | 500..=599 => TryError::Transient { reason: format!("HTTP {status}"), retry_after },
        401 | 403 => TryError::Fatal(ApiError::AuthRefused { query, code, msg: format!("HTTP {status}") }),
        404 => TryError::Fatal(ApiError::Permanent { query, code, msg: "HTTP 404: is api.base_url right?".into() }),
        _ => TryError::Fatal(ApiError::Permanent { query, code, msg: format!("HTTP {status}") }),
    }
}

pub(super) fn classify_code(query: PageQuery, code: i64, msg: String) -> TryError {
    match code {
        1000 | 1005 => TryError::Transient { reason: format!("API code {code}: \"{msg}\""), retry_after: None },
        1003 => TryError::Fatal(ApiError::AuthRefused { query, code, msg }),
        1002 if query.offset > 0 => TryError::Fatal(ApiError::DeepOffset { query, code, msg }),
        1001 | 1002 | 1006 => TryError::Fatal(ApiError::Permanent { query, code, msg }),
        _ => TryError::UnknownCode { code, msg },
    }
}
