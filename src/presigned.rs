//! Presigned credentials out of text: the API's strings (an input path, an error message
//! like "download failed: https://...?Signature=...") may carry URLs whose query grants
//! access to the customer's media. Every string stored or written to the rejects file goes
//! through [`scrub`] unless `storage.keep_url_query`.

use std::borrow::Cow;

/// Query parameters that carry a signature, a credential or what makes one valid, in
/// lower case; a name matches when equal, or when it starts with one ending in `-`.
/// AWS S3 (v2 and v4), Aliyun OSS, Huawei OBS, Google Cloud Storage, Azure SAS,
/// CloudFront, Tencent COS.
const SENSITIVE: [&str; 20] = [
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
];

/// Whether a query parameter named `name` is one of [`SENSITIVE`].
fn sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| if s.ends_with('-') { name.starts_with(s) } else { name == *s })
}

/// `text` with the sensitive query parameters removed from every URL in it (a query
/// left empty goes with its `?`); borrowed when there was nothing to remove.
pub fn scrub(text: &str) -> Cow<'_, str> {
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
        let kept: Vec<&str> = rest[q + 1..end]
            .split('&')
            .filter(|pair| !pair.is_empty() && !sensitive(pair.split('=').next().unwrap_or("")))
            .collect();
        changed |= kept.len() != rest[q + 1..end].split('&').filter(|p| !p.is_empty()).count();
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
    fn text_without_credentials_is_borrowed_unchanged() {
        for text in ["oss://bucket/a.mp4", "why? because", "https://h/p?page=2&size=10", "a ?"] {
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
