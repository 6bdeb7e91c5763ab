//! The vendor's AK/SK request signature (HMAC-SHA1), as in `docs/api/auth-and-errors.md`.
//!
//! The vendor's documents disagree on the string to sign; the variant is one small
//! function ([`string_to_sign`]) chosen by `api.signature_variant`, each with a pinned test,
//! so a deployment can switch if the live service disagrees. Nothing here logs anything.

use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::config::Variant;

/// What goes into a signature besides the secret.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The HTTP verb, e.g. `GET`.
    pub method: &'a str,
    /// Upper-case hex MD5 of the body, `""` without a body.
    pub content_md5: &'a str,
    /// `""` for GET.
    pub content_type: &'a str,
    /// RFC 1123, GMT.
    pub date: &'a str,
    /// Every header sent; only `x-wz-*` ones are signed.
    pub headers: &'a [(&'a str, &'a str)],
    /// The URL path, e.g. `/api/list_task`.
    pub path: &'a str,
    /// Query pairs, in any order; they are sorted here.
    pub query: &'a [(&'a str, String)],
}

/// `x-wz-*` headers, lower-cased, sorted, `name:value` trimmed, joined by `\n`.
fn canonical_headers(headers: &[(&str, &str)]) -> String {
    let mut wz: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .filter(|(k, _)| k.starts_with("x-wz-"))
        .collect();
    wz.sort();
    wz.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join("\n")
}

fn sorted_query(query: &[(&str, String)]) -> String {
    let mut pairs: Vec<_> = query.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(&b.1)));
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The string to sign for `variant`.
pub fn string_to_sign(variant: Variant, r: &Request<'_>) -> String {
    let query = sorted_query(r.query);
    let resource = if query.is_empty() { r.path.to_string() } else { format!("{}?{}", r.path, query) };
    match variant {
        Variant::LegacyAmpersand => format!("{}&{}&{}", r.method, r.path, query),
        Variant::Standard | Variant::TrailingNewline => {
            let mut s = format!(
                "{}\n{}\n{}\n{}\n{}\n{}",
                r.method,
                r.content_md5,
                r.content_type,
                r.date,
                canonical_headers(r.headers),
                resource
            );
            if variant == Variant::TrailingNewline {
                s.push('\n');
            }
            s
        }
    }
}

/// `Base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("Visionular AccessKeyId={access_key_id}, Signature={signature}")
}

/// The `Date` header for `unix_secs`, RFC 1123 in GMT.
pub fn http_date(unix_secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix_secs, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Pulls `AccessKeyId` and `Signature` out of an `Authorization` header (the simulator checks them).
pub fn parse_authorization(header: &str) -> Option<(&str, &str)> {
    let rest = header.strip_prefix("Visionular ")?;
    let mut ak = None;
    let mut sig = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "AccessKeyId" => ak = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    Some((ak?, sig?))
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
