//! Renders a task the way the real service does, quirks included: numbers as strings or
//! floats, `null` / `""` / missing for absent values, the older local-time format with
//! `"2000-01-01 00:00:00"` for "not finished", and fields nobody documented.

use chrono::FixedOffset;
use serde_json::{Map, Value, json};

use crate::row::TaskRow;
use crate::time::format_local;

/// The service's local zone for old-format times.
pub fn service_zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 exists")
}

/// One bit-field of a task's quirks.
fn bits(quirks: u64, shift: u32, modulo: u64) -> u64 {
    (quirks >> shift) % modulo
}

/// Renders `row` as a `data.list` element; `quirks` picks the spelling, `bad` drops the task_id.
pub fn render(row: &TaskRow, quirks: u64, bad: bool) -> Value {
    let mut o = Map::new();
    let number_style = bits(quirks, 0, 4); // 0,1 numbers; 2 strings; 3 floats
    let old_times = bits(quirks, 8, 10) == 0;
    let absent_style = bits(quirks, 12, 3); // null, "", missing
    let put_absent = |o: &mut Map<String, Value>, key: &str| match absent_style {
        0 => {
            o.insert(key.into(), Value::Null);
        }
        1 => {
            o.insert(key.into(), Value::String(String::new()));
        }
        _ => {}
    };
    let int = |v: i64| match number_style {
        2 => Value::String(v.to_string()),
        3 => json!(v as f64),
        _ => json!(v),
    };
    let float = |v: f64| if number_style == 2 { Value::String(v.to_string()) } else { json!(v) };
    let time = |v: i64| if old_times { Value::String(format_local(v, service_zone())) } else { int(v) };

    if !bad {
        o.insert("task_id".into(), Value::String(row.task_id.to_string()));
    }
    let strings = [
        ("status", &row.status),
        ("err_message", &row.err_message),
        ("template_id", &row.template_id),
        ("template_name", &row.template_name),
        ("input", &row.input),
        ("input_url", &row.input_url),
        ("output", &row.output),
        ("output_url", &row.output_url),
        ("objkey", &row.objkey),
        ("bucket", &row.bucket),
        ("region", &row.region),
        ("region_type", &row.region_type),
    ];
    for (key, value) in strings {
        match value {
            Some(v) => {
                o.insert(key.into(), Value::String(v.to_string()));
            }
            None => put_absent(&mut o, key),
        }
    }
    o.insert("create_time".into(), time(row.create_time));
    if let Some(finish) = unfinished_or(row.finish_time.map(time), old_times, absent_style, int(0)) {
        o.insert("finish_time".into(), finish);
    }
    match row.err_code {
        Some(c) => o.insert("err_code".into(), int(c)),
        None => o.insert("err_code".into(), Value::Null),
    };
    for (key, value) in [("src_bitrate", row.src_bitrate), ("dst_bitrate", row.dst_bitrate)] {
        match value {
            Some(v) => {
                o.insert(key.into(), float(v));
            }
            None => put_absent(&mut o, key),
        }
    }
    if let Some(Ok(Value::Object(unknown))) = row.extra.as_deref().map(serde_json::from_str::<Value>) {
        o.extend(unknown);
    }
    Value::Object(o)
}

/// How `finish_time` reads: the time, or for an unfinished task the old format's
/// `"2000-01-01 00:00:00"`, a missing field, or `0`.
fn unfinished_or(finish: Option<Value>, old_times: bool, absent_style: u64, zero: Value) -> Option<Value> {
    match finish {
        Some(f) => Some(f),
        None if old_times => Some(Value::String("2000-01-01 00:00:00".into())),
        None if absent_style == 2 => None,
        None => Some(zero),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::dataset::{DatasetSpec, generate};
    use crate::source::decode::{DecodeOptions, decode_task};

    #[test]
    fn every_rendering_decodes_back_to_the_truth() {
        let spec = DatasetSpec {
            seed: 3,
            tasks: 3000,
            start: 1_633_046_400,
            end: 1_633_132_800,
            hot_hour: None,
            bad_per_million: 0,
        };
        let opts = DecodeOptions { zone: service_zone(), keep_url_query: true };
        let mut nulled = 0;
        for (i, t) in generate(&spec).iter().enumerate() {
            let now = t.create + (i as i64 % 7) * 900;
            let truth = t.row_at(now);
            let Value::Object(obj) = render(&truth, t.quirks, false) else { panic!("an object") };
            assert_eq!(decode_task(&obj, &opts, &mut nulled).unwrap(), truth, "task {i}: {obj:?}");
        }
        assert_eq!(nulled, 0);
    }
}
