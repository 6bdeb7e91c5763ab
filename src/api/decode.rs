//! The tolerant decoder: a raw `list_task` body -> typed [`TaskRow`]s, or a reason why not.
//!
//! Pure and I/O-free. It accepts every quirk of `api/list_task.md`: numbers as numbers,
//! floats or strings; `null`, `""` or missing fields; unix seconds or the older
//! `"YYYY-MM-DD hh:mm:ss"` local time with `"2000-01-01 00:00:00"` meaning unfinished;
//! unknown fields. A field of an unusable type becomes `None` and is counted; a record with
//! no task_id or no usable create_time becomes a [`Reject`] that is kept, not dropped.

use chrono::FixedOffset;
use serde_json::{Map, Value};

use crate::row::{TaskRow, strip_query};

/// What the decoder needs to know besides the body.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Zone of `"YYYY-MM-DD hh:mm:ss"` times.
    pub zone: FixedOffset,
    /// Keep presigned query strings in `*_url` fields.
    pub keep_url_query: bool,
}

/// A decoded response body.
#[derive(Debug)]
pub enum Envelope {
    /// `code` 0 (or 1004, "empty result", which for a list is an empty page).
    Page(Page),
    /// Any other `code`, with the server's `msg`.
    ApiError { code: i64, msg: String },
}

/// One page of `list_task`.
#[derive(Debug, Default)]
pub struct Page {
    /// `data.total`: records in the whole window. `None` when the server answered 1004
    /// without data, which says nothing about the window.
    pub total: Option<u64>,
    /// The page's records, in server order.
    pub records: Vec<Record>,
    /// Fields whose value had an unusable type and were stored as null.
    pub nulled_fields: u64,
}

/// One element of `data.list`.
#[derive(Debug)]
pub enum Record {
    Task(TaskRow),
    Reject(Reject),
}

/// A record that could not become a row, kept raw with the reason for the rejects file.
#[derive(Debug, Clone)]
pub struct Reject {
    /// Why, in a phrase ("no task_id", "no usable create_time: ...").
    pub reason: String,
    /// The record exactly as received.
    pub raw: Value,
}

impl Record {
    /// The identity used to check a window is complete (distinct == total): the task_id,
    /// or for a reject its raw text, so that rejects count towards `total` too.
    pub fn identity(&self) -> String {
        match self {
            Record::Task(t) => t.task_id.clone(),
            Record::Reject(r) => format!("\u{0}reject:{}", r.raw),
        }
    }
}

/// Why a body is not a `list_task` response at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("the body is not JSON ({0})")]
    NotJson(String),
    #[error("the body is JSON but not a list_task response: {0}")]
    Malformed(String),
}

/// Decodes one response body.
pub fn decode_page(body: &[u8], opts: &DecodeOptions) -> Result<Envelope, DecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let top = value.as_object().ok_or_else(|| DecodeError::Malformed("the top level is not an object".into()))?;
    let code = match lenient_int(top.get("code")) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(DecodeError::Malformed("`code` is missing".into())),
        Err(()) => return Err(DecodeError::Malformed(format!("`code` is not a number: {}", short(top.get("code"))))),
    };
    let data = top.get("data").filter(|d| !d.is_null());
    match code {
        0 => {}
        1004 if data.is_none() => return Ok(Envelope::Page(Page::default())),
        1004 => {}
        _ => {
            let msg = top.get("msg").and_then(Value::as_str).unwrap_or("").chars().take(200).collect();
            return Ok(Envelope::ApiError { code, msg });
        }
    }
    let data = data.and_then(Value::as_object).ok_or_else(|| DecodeError::Malformed("`data` is missing or not an object although `code` is 0".into()))?;
    let total = match lenient_int(data.get("total")) {
        Ok(Some(t)) if t >= 0 => t as u64,
        _ => return Err(DecodeError::Malformed(format!("`data.total` is not a count: {}", short(data.get("total"))))),
    };
    let list = match data.get("list") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => return Err(DecodeError::Malformed(format!("`data.list` is not an array: {}", short(Some(other))))),
    };
    let mut page = Page { total: Some(total), records: Vec::with_capacity(list.len()), nulled_fields: 0 };
    for raw in list {
        let record = match raw.as_object() {
            Some(obj) => decode_task(obj, opts, &mut page.nulled_fields)
                .map(Record::Task)
                .unwrap_or_else(|reason| Record::Reject(Reject { reason, raw: redact(raw, opts) })),
            None => Record::Reject(Reject { reason: "the record is not a JSON object".into(), raw: raw.clone() }),
        };
        page.records.push(record);
    }
    Ok(Envelope::Page(page))
}

/// The raw record as it goes to the rejects file: presigned query strings are removed from
/// `*_url` fields (unless `keep_url_query`), as they are from stored rows.
fn redact(raw: &Value, opts: &DecodeOptions) -> Value {
    let mut raw = raw.clone();
    if !opts.keep_url_query
        && let Some(obj) = raw.as_object_mut()
    {
        for (key, value) in obj.iter_mut() {
            if key.ends_with("_url")
                && let Value::String(url) = value
            {
                *url = strip_query(url).to_string();
            }
        }
    }
    raw
}

/// Decodes one task object; `Err` is the reject reason.
pub fn decode_task(obj: &Map<String, Value>, opts: &DecodeOptions, nulled: &mut u64) -> Result<TaskRow, String> {
    let task_id = match lenient_string(obj.get("task_id")) {
        Ok(Some(id)) => id,
        _ => return Err("no task_id".into()),
    };
    let create_time = match lenient_time(obj.get("create_time"), opts.zone) {
        Ok(Some(t)) if t > 0 => t,
        _ => return Err(format!("no usable create_time: {}", short(obj.get("create_time")))),
    };
    let url = |v: Option<String>| v.map(|u| if opts.keep_url_query { u } else { strip_query(&u).to_string() });
    Ok(TaskRow {
        status: keep(lenient_string(obj.get("status")), nulled),
        err_code: keep(lenient_int(obj.get("err_code")), nulled),
        err_message: keep(lenient_string(obj.get("err_message")), nulled),
        create_time,
        finish_time: keep(lenient_time(obj.get("finish_time"), opts.zone), nulled),
        src_bitrate: keep(lenient_float(obj.get("src_bitrate")), nulled),
        dst_bitrate: keep(lenient_float(obj.get("dst_bitrate")), nulled),
        template_id: keep(lenient_string(obj.get("template_id")), nulled),
        template_name: keep(lenient_string(obj.get("template_name")), nulled),
        input: keep(lenient_string(obj.get("input")), nulled),
        output: keep(lenient_string(obj.get("output")), nulled),
        objkey: keep(lenient_string(obj.get("objkey")), nulled),
        input_url: url(keep(lenient_string(obj.get("input_url")), nulled)),
        output_url: url(keep(lenient_string(obj.get("output_url")), nulled)),
        bucket: keep(lenient_string(obj.get("bucket")), nulled),
        region: keep(lenient_string(obj.get("region")), nulled),
        region_type: keep(lenient_string(obj.get("region_type")), nulled),
        task_id,
    })
}

fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

/// A field's value, or `None` (counted in `nulled`) when its type was unusable.
fn keep<T>(value: Result<Option<T>, ()>, nulled: &mut u64) -> Option<T> {
    value.unwrap_or_else(|()| {
        *nulled += 1;
        None
    })
}

/// An integer from a number, an integral float or a numeric string.
pub fn lenient_int(v: Option<&Value>) -> Result<Option<i64>, ()> {
    if is_blank(v) {
        return Ok(None);
    }
    let f = match v {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => return Ok(Some(i)),
            None => n.as_f64(),
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => return Ok(Some(i)),
            Err(_) => s.trim().parse::<f64>().ok(),
        },
        _ => None,
    };
    match f {
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
        _ => Err(()),
    }
}

/// A finite float from a number or a numeric string.
pub fn lenient_float(v: Option<&Value>) -> Result<Option<f64>, ()> {
    if is_blank(v) {
        return Ok(None);
    }
    let f = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    f.filter(|f| f.is_finite()).map(Some).ok_or(())
}

/// A string; numbers and booleans are kept in their JSON spelling, `""` is `None`.
pub fn lenient_string(v: Option<&Value>) -> Result<Option<String>, ()> {
    if is_blank(v) {
        return Ok(None);
    }
    match v {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        _ => Err(()),
    }
}

/// Unix seconds from a number, a numeric string or a local `"YYYY-MM-DD hh:mm:ss"`.
/// `0` and `"2000-01-01 00:00:00"` mean "not yet" (`None`). A 13-digit value is taken as
/// milliseconds, which some of the vendor's services send.
pub fn lenient_time(v: Option<&Value>, zone: FixedOffset) -> Result<Option<i64>, ()> {
    if let Ok(n) = lenient_int(v) {
        return Ok(match n {
            None | Some(0) => None,
            Some(ms) if ms > 100_000_000_000 => Some(ms / 1000),
            Some(s) => Some(s),
        });
    }
    match v {
        Some(Value::String(s)) if s.trim() == "2000-01-01 00:00:00" => Ok(None),
        Some(Value::String(s)) => crate::time::parse_local(s, zone).map(Some).ok_or(()),
        _ => Err(()),
    }
}

/// A bounded rendering of a value for error messages.
fn short(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 60 { format!("{}...", s.chars().take(60).collect::<String>()) } else { s }
        }
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
