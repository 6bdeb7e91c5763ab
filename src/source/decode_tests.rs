use super::*;
use crate::source::raw_task::KNOWN_FIELDS;
use serde_json::json;

fn opts() -> DecodeOptions {
    DecodeOptions { zone: crate::time::parse_offset("+08:00").unwrap(), keep_url_query: false }
}

fn page(body: serde_json::Value) -> Page {
    match decode_page(body.to_string().as_bytes(), &opts()).unwrap() {
        Envelope::Page(p) => p,
        Envelope::ApiError { code, .. } => panic!("unexpected API error {code}"),
    }
}

fn one(record: serde_json::Value) -> Record {
    page(json!({"code": 0, "msg": "success", "data": {"list": [record], "num": 1, "total": 1}})).records.pop().unwrap()
}

fn task(record: serde_json::Value) -> TaskRow {
    match one(record) {
        Record::Task(t) => t,
        Record::Reject(r) => panic!("rejected: {}", r.reason),
    }
}

#[test]
fn numbers_may_come_as_numbers_floats_or_strings() {
    let t = task(
        json!({"task_id": "a", "create_time": "1634020557", "finish_time": 1634020657.0, "err_code": "0", "src_bitrate": "3898.93", "dst_bitrate": 437.01}),
    );
    assert_eq!(t.create_time, 1_634_020_557);
    assert_eq!(t.finish_time, Some(1_634_020_657));
    assert_eq!(t.duration_s(), Some(100));
    assert_eq!(t.err_code, Some(0));
    assert_eq!((t.src_bitrate, t.dst_bitrate), (Some(3898.93), Some(437.01)));
}

#[test]
fn null_empty_and_missing_fields_are_none() {
    let t =
        task(json!({"task_id": "a", "create_time": 1634020557, "status": null, "err_message": "", "finish_time": 0}));
    assert_eq!((t.status, t.err_message, t.finish_time, t.template_id), (None, None, None, None));
}

#[test]
fn old_local_times_use_the_configured_zone_and_2000_means_unfinished() {
    let t = task(json!({"task_id": "a", "create_time": "2021-10-12 08:00:00", "finish_time": "2000-01-01 00:00:00"}));
    assert_eq!(t.create_time, 1_633_996_800);
    assert_eq!(t.finish_time, None);
}

#[test]
fn millisecond_times_are_recognised() {
    assert_eq!(task(json!({"task_id": "a", "create_time": 1634020557123_i64})).create_time, 1_634_020_557);
}

#[test]
fn unknown_fields_and_statuses_are_tolerated() {
    let t = task(json!({"task_id": 42, "create_time": 1634020557, "status": "paused", "shiny_new_field": {"x": 1}}));
    assert_eq!(t.task_id, "42");
    assert_eq!(t.status.as_deref(), Some("paused"));
    assert!(!t.is_final());
    assert_eq!(t.extra.as_deref(), Some(r#"{"shiny_new_field":{"x":1}}"#), "kept whole, not dropped");
}

#[test]
fn unknown_fields_of_every_type_are_kept_as_one_json_object_with_sorted_keys() {
    let body = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/unknown_fields.body")).unwrap();
    let Ok(Envelope::Page(page)) = decode_page(&body, &opts()) else { panic!("a page") };
    let extras: Vec<Option<String>> = page
        .records
        .into_iter()
        .map(|r| match r {
            Record::Task(t) => t.extra,
            Record::Reject(r) => panic!("rejected: {}", r.reason),
        })
        .collect();
    let u1 = r#"{"gpu":{"count":2,"model":"T4"},"note":null,"priority":3,"tags":["a","b"]}"#;
    assert_eq!(extras, vec![Some(u1.to_string()), None]);
}

#[test]
fn a_record_without_unknown_fields_has_no_extra() {
    assert_eq!(task(json!({"task_id": "a", "create_time": 1634020557})).extra, None);
}

#[test]
fn a_number_beyond_f64_in_an_unknown_field_refuses_the_page_on_both_paths() {
    let body =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/unknown_field_beyond_f64.body")).unwrap();
    let fast = decode_page(&body, &opts());
    assert_eq!(fast, decode_page_via_value(&body, &opts()));
    let err = fast.unwrap_err().to_string();
    assert!(err.contains("not JSON") && err.contains("number out of range"), "{err}");
}

#[test]
fn presigned_queries_are_stripped_from_urls_only() {
    let t = task(
        json!({"task_id": "a", "create_time": 1634020557, "input": "oss://b/x.mp4?v=1", "input_url": "https://b/x.mp4?Signature=abc&Expires=1"}),
    );
    assert_eq!(t.input_url.as_deref(), Some("https://b/x.mp4"));
    assert_eq!(t.input.as_deref(), Some("oss://b/x.mp4?v=1"));
}

#[test]
fn a_field_of_an_unusable_type_becomes_null_and_is_counted() {
    let p = page(
        json!({"code": 0, "data": {"list": [{"task_id": "a", "create_time": 1634020557, "err_code": {"x": 1}, "src_bitrate": "fast", "dst_bitrate": "NaN"}], "total": 1}}),
    );
    assert_eq!(p.nulled_fields, 3);
    let Record::Task(t) = &p.records[0] else { panic!("a task") };
    assert_eq!((t.err_code, t.src_bitrate, t.dst_bitrate), (None, None, None));
}

#[test]
fn a_record_without_task_id_or_create_time_is_rejected_with_its_reason() {
    for (record, reason) in [
        (json!({"create_time": 1634020557}), "no task_id"),
        (json!({"task_id": "", "create_time": 1634020557}), "no task_id"),
        (json!({"task_id": "a"}), "no usable create_time"),
        (json!({"task_id": "a", "create_time": "yesterday"}), "no usable create_time"),
        (json!({"task_id": "a", "create_time": -5}), "no usable create_time"),
        (json!("just a string"), "not a JSON object"),
    ] {
        match one(record.clone()) {
            Record::Reject(r) => {
                assert!(r.reason.contains(reason), "{record}: {}", r.reason);
                assert_eq!(r.raw, record);
            }
            Record::Task(_) => panic!("{record} was accepted"),
        }
    }
}

#[test]
fn code_1004_is_an_empty_page_and_other_codes_are_api_errors() {
    let empty = decode_page(br#"{"code": 1004, "msg": "empty result", "data": null}"#, &opts()).unwrap();
    assert!(matches!(empty, Envelope::Page(Page { total: None, ref records, .. }) if records.is_empty()));
    let err = decode_page(br#"{"code": "1003", "msg": "auth fail"}"#, &opts()).unwrap();
    assert!(matches!(err, Envelope::ApiError { code: 1003, ref msg } if msg == "auth fail"));
}

#[test]
fn the_apis_own_error_message_loses_its_presigned_credentials() {
    let body = br#"{"code": 1005, "msg": "operation fail: https://b/o?X-Tos-Signature=s&token=t&v=1"}"#;
    let err = decode_page(body, &opts()).unwrap();
    assert!(matches!(err, Envelope::ApiError { code: 1005, ref msg } if msg == "operation fail: https://b/o?v=1"));
}

#[test]
fn total_may_be_a_string_and_list_may_be_null() {
    let p = page(json!({"code": 0, "data": {"list": null, "num": 0, "total": "0"}}));
    assert_eq!(p.total, Some(0));
    assert!(p.records.is_empty());
}

#[test]
fn broken_bodies_are_errors_not_panics() {
    for body in [&b"<html>502</html>"[..], b"{\"code\": 0, \"data\": {\"list\": [", b"", b"\xff\xfe", b"[]"] {
        assert!(decode_page(body, &opts()).is_err(), "{:?}", String::from_utf8_lossy(body));
    }
    for (body, what) in [
        (json!({"code": 0, "data": null}), "`data`"),
        (json!({"code": 0, "data": {"list": [], "total": -1}}), "data.total"),
        (json!({"code": 0, "data": {"list": {}, "total": 1}}), "data.list"),
        (json!({"msg": "x"}), "`code`"),
    ] {
        let e = decode_page(body.to_string().as_bytes(), &opts()).unwrap_err().to_string();
        assert!(e.contains(what), "{body}: {e}");
    }
}

#[test]
fn rejected_records_keep_no_presigned_query_string() {
    let record = json!({"create_time": 1634020557, "input_url": "https://b/x.mp4?AWSAccessKeyId=AK&Signature=S", "output": "oss://b/y"});
    let Record::Reject(r) = one(record) else { panic!("rejected") };
    assert_eq!(r.raw["input_url"], "https://b/x.mp4");
    assert_eq!(r.raw["output"], "oss://b/y");
}

#[test]
fn a_list_element_that_is_not_an_object_is_rejected_without_its_presigned_credentials() {
    // A string or an array where a task object belongs (issue 32, item 9): kept as a
    // reject, but the credentials a presigned URL in it carries stay out of _rejects/.
    for element in [
        json!("https://b.oss-cn-hangzhou.aliyuncs.com/x.mp4?OSSAccessKeyId=AK1&Expires=1&Signature=SIG"),
        json!(["task", {"input_url": "https://b/x.mp4?X-Amz-Credential=AK2&X-Amz-Signature=SIG"}]),
    ] {
        let Record::Reject(r) = one(element.clone()) else { panic!("{element} is rejected") };
        assert_eq!(r.reason, "the record is not a JSON object");
        let kept = r.raw.to_string();
        assert!(!kept.contains("SIG") && !kept.contains("AK1") && !kept.contains("AK2"), "{kept}");
        assert!(kept.contains("x.mp4"), "the rest of the element is kept: {kept}");
    }
}

mod fast_and_value_paths {
    use super::*;
    use proptest::prelude::*;

    /// JSON texts of every kind a field may hold, quirks included.
    fn value_text() -> impl Strategy<Value = String> {
        const QUIRKS: [&str; 21] = [
            "null",
            "true",
            "\"\"",
            "\"  \"",
            "\"2000-01-01 00:00:00\"",
            "\"2021-10-12 14:35:57\"",
            "\"a\\\"b\\u00e9\"",
            "18446744073709551615",
            "-0",
            "1e3",
            "[1,{\"a\":2}]",
            "{\"x\":[]}",
            "7.7e308",
            "-1e400",
            "1.7976931348623157e308",
            "123456789012345678901234567890",
            "-9223372036854775809",
            "5e-324",
            "{\"deep\":[1e308,{\"y\":null}]}",
            "[7.7e308]",
            "{\"n\":-1e400}",
        ];
        prop_oneof![
            // Weighted as one arm per literal, as when each was an arm of its own.
            21 => proptest::sample::select(&QUIRKS[..]).prop_map(str::to_string),
            1 => any::<i64>().prop_map(|i| i.to_string()),
            1 => (0i64..2_000_000_000_000).prop_map(|i| i.to_string()),
            1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| serde_json::to_string(&f).unwrap()),
            1 => (0i64..2_000_000_000).prop_map(|i| format!("\"{i}\"")),
            1 => "[a-z0-9 .:?=&-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        ]
    }

    fn record_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("task_id"),
            Just("create_time"),
            Just("finish_time"),
            Just("status"),
            Just("err_code"),
            Just("src_bitrate"),
            Just("dst_bitrate"),
            Just("input_url"),
            Just("region"),
            Just("extra"),
            Just("dst_bitra01"),
            Just("priority"),
        ];
        let object = proptest::collection::vec((key, value_text()), 0..8).prop_map(|pairs| {
            format!("{{{}}}", pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","))
        });
        let typical = (any::<u32>(), 1_600_000_000i64..1_700_000_000, value_text()).prop_map(|(id, t, v)| {
            format!("{{\"task_id\":\"t{id}\",\"create_time\":{t},\"status\":\"success\",\"src_bitrate\":{v}}}")
        });
        prop_oneof![object, typical, value_text()]
    }

    proptest! {
        /// The fast path is an optimisation only: on every page it returns exactly what the
        /// `Value` path returns, rejects, nulled-field counts and errors included.
        #[test]
        fn the_fast_path_agrees_with_the_value_path(records in proptest::collection::vec(record_text(), 0..6), code in value_text(), total in value_text()) {
            let typical = format!("{{\"code\":0,\"data\":{{\"total\":{},\"list\":[{}]}}}}", records.len(), records.join(","));
            let odd = format!("{{\"code\":{code},\"data\":{{\"total\":{total},\"list\":[{}]}}}}", records.join(","));
            // Keys the envelope does not know, at both levels, holding any value.
            let unknown = format!("{{\"code\":0,\"msg\":{code},\"trace\":{total},\"data\":{{\"total\":{},\"num\":{total},\"li3t\":{code},\"list\":[{}]}}}}", records.len(), records.join(","));
            for body in [typical, odd, unknown] {
                let fast = decode_page(body.as_bytes(), &opts());
                let slow = decode_page_via_value(body.as_bytes(), &opts());
                prop_assert_eq!(fast, slow, "{}", body);
            }
        }
    }
}

#[test]
fn presigned_credentials_leave_every_string_field_and_the_rejects() {
    let url = "https://b.s3.amazonaws.com/k.mp4?X-Amz-Credential=AKID%2F1&X-Amz-Signature=abc&Expires=1&OSSAccessKeyId=L&security-token=T&x-obs-date=1&part=2";
    let numbers = ["task_id", "create_time", "finish_time", "err_code", "src_bitrate", "dst_bitrate"];
    let strings = KNOWN_FIELDS.iter().filter(|f| !numbers.contains(f));
    let fields: Vec<&str> = strings.copied().chain(["gpu_log"]).collect();
    let mut record = serde_json::Map::new();
    for f in fields {
        record.insert(f.into(), json!(format!("{f}: {url} failed")));
    }
    record.insert("create_time".into(), json!(1634020557));
    let with_id = {
        let mut r = record.clone();
        r.insert("task_id".into(), json!("a"));
        r
    };
    let t = task(serde_json::Value::Object(with_id));
    let Record::Reject(r) = one(serde_json::Value::Object(record)) else { panic!("no task_id: a reject") };
    let text = format!("{t:?} {}", r.raw);
    for needle in ["X-Amz-", "Signature", "Expires", "OSSAccessKeyId", "security-token", "x-obs-", "AKID"] {
        assert!(!text.contains(needle), "{needle} survived: {text}");
    }
    assert!(t.err_message.as_deref() == Some("err_message: https://b.s3.amazonaws.com/k.mp4?part=2 failed"), "{t:?}");
}
