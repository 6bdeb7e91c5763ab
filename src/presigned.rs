//! Presigned credentials out of text: the API's strings (an input path, an error message
//! like "download failed: https://...?Signature=...") may carry URLs whose query grants
//! access to the customer's media. Every string stored or written to the rejects file goes
//! through [`scrub`] unless `storage.keep_url_query`.

use std::borrow::Cow;

/// Query parameters that carry a signature, a credential or what makes one valid, in
/// lower case; a name matches when equal, or when it starts with one ending in `-`.
/// AWS S3 (v2 and v4), Aliyun OSS and CDN (`auth_key`), Huawei OBS, Google Cloud Storage,
/// Azure SAS, CloudFront, Tencent COS, Volcengine TOS, and the generic `token` / `sign`
/// of CDN URL authentication.
const SENSITIVE: [&str; 29] = [
    "signature",
    "awsaccesskeyid",
    "expires",
    "x-amz-",
    "ossaccesskeyid",
    "x-oss-",
    "security-token",
    "securitytoken",
    "accesskeyid",
    "x-obs-",
    "x-goog-",
    "googleaccessid",
    "sig",
    "se",
    "sv",
    "sp",
    "policy",
    "key-pair-id",
    "q-sign-algorithm",
    "q-signature",
    "x-cos-",
    "x-tos-",
    "token",
    "access_token",
    "auth_key",
    "sign",
    "x-ms-signature",
    // Baidu BOS: the whole bce-auth-v1 string rides in `authorization`.
    "authorization",
    "x-bce-",
];

/// Whether a query parameter named `name` is one of [`SENSITIVE`]. A name after an
/// HTML-escaped separator (`&amp;Signature=`) arrives as `amp;Signature`.
fn sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_prefix("amp;").unwrap_or(&name);
    SENSITIVE.iter().any(|s| if s.ends_with('-') { name.starts_with(s) } else { name == *s })
}

/// `text` with the credentials removed from every URL in it: the sensitive query
/// parameters (a query left empty goes with its `?`), those of a URL percent-encoded inside
/// another one's query, and a `user:password@` before the host. Borrowed when there was
/// nothing to remove.
pub fn scrub(text: &str) -> Cow<'_, str> {
    match scrub_query(text) {
        Cow::Borrowed(_) => scrub_userinfo(text),
        Cow::Owned(clean) => Cow::Owned(scrub_userinfo(&clean).into_owned()),
    }
}

/// `text` without the `userinfo@` of any `scheme://userinfo@host` in it.
fn scrub_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority = tail.find(|c: char| c.is_whitespace() || "/?#\"'<>()[]{}`".contains(c)).unwrap_or(tail.len());
        match tail[..authority].rfind('@') {
            Some(user_end) => {
                changed = true;
                rest = &tail[user_end + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

/// `pair` (`name=value`) with a URL percent-encoded in its value scrubbed, re-encoded;
/// `None` when nothing in it changed.
fn scrub_nested(pair: &str) -> Option<String> {
    let (name, value) = pair.split_once('=')?;
    // A URL given unencoded as a value (`?url=https://b/o?Signature=s`): its own query
    // began at the inner `?`.
    if value.contains('?')
        && let Cow::Owned(clean) = scrub(value)
    {
        return Some(format!("{name}={clean}"));
    }
    if !value.contains('%') {
        return None;
    }
    let decoded = percent_decode(value)?;
    match scrub(&decoded) {
        Cow::Borrowed(_) => None,
        Cow::Owned(clean) => Some(format!("{name}={}", percent_encode(&clean))),
    }
}

/// `%XX` sequences decoded; `None` when the result is not UTF-8 (then it is left alone).
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Everything but RFC 3986's unreserved characters percent-encoded.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// [`scrub`]'s query half: the sensitive parameters out of every query in `text`.
fn scrub_query(text: &str) -> Cow<'_, str> {
    if !text.contains('?') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(q) = rest.find('?') {
        out.push_str(&rest[..q]);
        // The query runs to the first character no URL holds unescaped.
        let query_len = rest[q + 1..].find(|c: char| c.is_whitespace() || "\"'<>()[]{}`#".contains(c));
        let end = q + 1 + query_len.unwrap_or(rest.len() - q - 1);
        // Prose punctuation after a URL ("..., then retry") is not part of it.
        let end = q + 1 + rest[q + 1..end].trim_end_matches([',', '.', ';', ':', '!']).len();
        let mut kept: Vec<Cow<'_, str>> = rest[q + 1..end]
            .split('&')
            .filter(|pair| !pair.is_empty() && !sensitive(pair.split('=').next().unwrap_or("")))
            .map(|pair| scrub_nested(pair).map_or(Cow::Borrowed(pair), Cow::Owned))
            .collect();
        changed |= kept.iter().any(|pair| matches!(pair, Cow::Owned(_)))
            || kept.len() != rest[q + 1..end].split('&').filter(|p| !p.is_empty()).count();
        // The first parameter kept after an escaped separator goes without its `amp;`.
        if let Some(first) = kept.first_mut().filter(|p| p.starts_with("amp;") && changed) {
            *first = Cow::Owned(first["amp;".len()..].to_string());
        }
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        } else if end == q + 1 {
            out.push('?');
        } else {
            changed = true;
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    if changed { Cow::Owned(out) } else { Cow::Borrowed(text) }
}

/// What the decoder stores for `row` without `keep_url_query`, `extra` included: the
/// simulator's ground truth goes through this.
pub fn scrub_task(row: &mut crate::row::TaskRow) {
    scrub_columns(row);
    if let Some(Ok(mut extra)) = row.extra.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        scrub_json(&mut extra);
        row.extra = Some(extra.to_string());
    }
}

/// The rule for the string columns, one for the decoder and the truth: the `*_url`
/// columns lose their whole query, every other string its signature parameters. (The
/// decoder scrubs `extra` before it serializes it, with [`scrub_json`].)
pub fn scrub_columns(row: &mut crate::row::TaskRow) {
    for url in [&mut row.input_url, &mut row.output_url].into_iter().flatten() {
        // In place: the query is a suffix.
        let kept = crate::row::strip_query(url).len();
        url.truncate(kept);
    }
    let texts = [
        &mut row.status,
        &mut row.err_message,
        &mut row.template_id,
        &mut row.template_name,
        &mut row.input,
        &mut row.output,
        &mut row.objkey,
        &mut row.bucket,
        &mut row.region,
        &mut row.region_type,
    ];
    for text in texts.into_iter().flatten() {
        if let Cow::Owned(clean) = scrub(text) {
            *text = clean.into();
        }
    }
}

/// Scrubs every string inside a JSON value, keys left as they are.
pub fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(clean) = scrub(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(scrub_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_go_from_urls_inside_any_text_and_the_rest_stays() {
        let msg = "download failed: https://b.s3.amazonaws.com/in.mp4?X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F1&X-Amz-Signature=abc&versionId=3 (403)";
        assert_eq!(scrub(msg), "download failed: https://b.s3.amazonaws.com/in.mp4?versionId=3 (403)");
        let oss = "https://b.oss-cn.aliyuncs.com/x.mp4?OSSAccessKeyId=LTAI&Expires=1&Signature=s%3D&security-token=t";
        assert_eq!(scrub(oss), "https://b.oss-cn.aliyuncs.com/x.mp4");
        let obs = "see https://b.obs.myhuaweicloud.com/o?AccessKeyId=A&x-obs-security-token=T&Signature=S, then retry";
        assert_eq!(scrub(obs), "see https://b.obs.myhuaweicloud.com/o, then retry");
        let azure = "https://a.blob.core.windows.net/c/b?sv=2021&se=2030&sp=r&sig=abc%3D";
        assert_eq!(scrub(azure), "https://a.blob.core.windows.net/c/b");
    }

    #[test]
    fn the_credentials_of_cdn_tos_cos_bos_and_escaped_urls_go_too() {
        let cases = [
            ("https://cdn.example.com/v.mp4?auth_key=1700000000-0-0-abc", "https://cdn.example.com/v.mp4"),
            ("https://c/v.mp4?token=abc&x=1", "https://c/v.mp4?x=1"),
            ("https://c/v.mp4?t=1&sign=abc", "https://c/v.mp4?t=1"),
            (
                "https://b.tos-cn-beijing.volces.com/o?X-Tos-Algorithm=TOS4&X-Tos-Credential=AK&X-Tos-Signature=s&v=2",
                "https://b.tos-cn-beijing.volces.com/o?v=2",
            ),
            (
                "https://b.cos.myqcloud.com/o?q-sign-algorithm=sha1&q-signature=s&x-cos-security-token=t",
                "https://b.cos.myqcloud.com/o",
            ),
            (
                "https://b.bj.bcebos.com/o.mp4?authorization=bce-auth-v1%2FAK%2F2026-01-01T00%3A00%3A00Z%2F1800%2F%2Fs&x-bce-security-token=t&v=1",
                "https://b.bj.bcebos.com/o.mp4?v=1",
            ),
            (
                "<a href=\"https://h/o?versionId=3&amp;Signature=s&amp;Expires=1\">",
                "<a href=\"https://h/o?versionId=3\">",
            ),
            ("<a href=\"https://h/o?Signature=s&amp;versionId=3\">", "<a href=\"https://h/o?versionId=3\">"),
            ("fetch https://user:pa55@h.example.com/o.mp4 failed", "fetch https://h.example.com/o.mp4 failed"),
            ("ftp://u@h/x and https://h/y", "ftp://h/x and https://h/y"),
            (
                "https://proxy/get?url=https://b/o?X-Amz-Signature=abc&X-Amz-Credential=k&n=1",
                "https://proxy/get?url=https://b/o&n=1",
            ),
            (
                "https://proxy/get?src=https%3A%2F%2Fb.s3.amazonaws.com%2Fin.mp4%3FX-Amz-Signature%3Dabc%26versionId%3D3&n=1",
                "https://proxy/get?src=https%3A%2F%2Fb.s3.amazonaws.com%2Fin.mp4%3FversionId%3D3&n=1",
            ),
        ];
        for (text, clean) in cases {
            assert_eq!(scrub(text), clean, "{text}");
        }
    }

    #[test]
    fn text_without_credentials_is_borrowed_unchanged() {
        for text in [
            "oss://bucket/a.mp4",
            "why? because",
            "https://h/p?page=2&size=10",
            "a ?",
            "mail me@example.com at https://h/p",
            "https://h/p?q=a%20b&amp;page=2",
            "https://proxy/get?src=https%3A%2F%2Fh%2Fp%3Fpage%3D2",
        ] {
            assert!(matches!(scrub(text), Cow::Borrowed(t) if t == text), "{text}");
        }
    }

    #[test]
    fn every_string_of_a_json_value_is_scrubbed() {
        let mut v =
            serde_json::json!({"a": ["x https://h/p?Signature=s"], "b": {"Signature": "https://h/q?sig=1&k=2"}});
        scrub_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x https://h/p"], "b": {"Signature": "https://h/q?k=2"}}));
    }
}
