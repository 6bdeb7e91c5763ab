use super::*;

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hmac_sha1_matches_rfc_2202_vectors() {
    assert_eq!(hmac_hex(&[0x0b; 20], b"Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00");
    assert_eq!(hmac_hex(b"Jefe", b"what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    assert_eq!(
        hmac_hex(&[0xaa; 80], b"Test Using Larger Than Block-Size Key - Hash Key First"),
        "aa4ae5e15272d00e95705637ce8a3b55ed402112"
    );
}

/// Headers and query pairs of one request.
type Parts = (Vec<(&'static str, &'static str)>, Vec<(&'static str, String)>);

fn example() -> Parts {
    let headers = vec![("Date", "Wed, 03 Nov 2021 03:00:50 GMT"), ("X-Wz-Nonce", " abc123 "), ("X-Wz-Zeta", "z")];
    let query = vec![
        ("start_time", "1633708800".to_string()),
        ("end_time", "1633795200".to_string()),
        ("count", "50".to_string()),
        ("start_num", "0".to_string()),
    ];
    (headers, query)
}

fn request<'a>(headers: &'a [(&'a str, &'a str)], query: &'a [(&'a str, String)]) -> Request<'a> {
    Request {
        method: "GET",
        content_md5: "",
        content_type: "",
        date: "Wed, 03 Nov 2021 03:00:50 GMT",
        headers,
        path: "/api/list_task",
        query,
    }
}

#[test]
fn the_standard_string_to_sign_is_pinned() {
    let (h, q) = example();
    assert_eq!(
        string_to_sign(Variant::Standard, &request(&h, &q)),
        "GET\n\n\nWed, 03 Nov 2021 03:00:50 GMT\nx-wz-nonce:abc123\nx-wz-zeta:z\n/api/list_task?count=50&end_time=1633795200&start_num=0&start_time=1633708800"
    );
}

#[test]
fn the_trailing_newline_variant_only_adds_a_newline() {
    let (h, q) = example();
    let standard = string_to_sign(Variant::Standard, &request(&h, &q));
    assert_eq!(string_to_sign(Variant::TrailingNewline, &request(&h, &q)), format!("{standard}\n"));
}

#[test]
fn the_legacy_variant_joins_with_ampersands() {
    let (h, q) = example();
    assert_eq!(
        string_to_sign(Variant::LegacyAmpersand, &request(&h, &q)),
        "GET&/api/list_task&count=50&end_time=1633795200&start_num=0&start_time=1633708800"
    );
}

#[test]
fn the_signature_is_base64_of_hmac_sha1() {
    // base64 of RFC 2202 test case 2's digest.
    assert_eq!(signature("Jefe", "what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
    let header = authorization("CWIs00000000i3x0", "c2ln");
    assert_eq!(header, "Visionular AccessKeyId=CWIs00000000i3x0, Signature=c2ln");
    assert_eq!(parse_authorization(&header), Some(("CWIs00000000i3x0", "c2ln")));
}

#[test]
fn dates_are_rfc_1123_in_gmt() {
    assert_eq!(http_date(1_635_908_450), "Wed, 03 Nov 2021 03:00:50 GMT");
}

#[test]
fn unknown_variants_are_refused() {
    assert_eq!(Variant::parse("standard"), Some(Variant::Standard));
    assert_eq!(Variant::parse("v2"), None);
}
