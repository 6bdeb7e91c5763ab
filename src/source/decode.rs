//! The tolerant decoder: a raw `list_task` body -> typed [`TaskRow`]s, or a reason why not.
//!
//! Pure and I/O-free. It accepts every quirk of `docs/api/list_task.md`: numbers as numbers,
//! floats or strings; `null`, `""` or missing fields; unix seconds or the older
//! `"YYYY-MM-DD hh:mm:ss"` local time with `"2000-01-01 00:00:00"` meaning unfinished;
//! unknown fields. A field of an unusable type becomes `None` and is counted; a record with
//! no task_id or no usable create_time becomes a [`Reject`] that is kept, not dropped.

use chrono::FixedOffset;
use serde_json::{Map, Value};

use super::field::{Field, Unusable};
use super::raw_task::{FastEnvelope, FastRecord, RawTask};
use crate::row::{TaskRow, Text, strip_query};

/// What the decoder needs to know besides the body.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Zone of `"YYYY-MM-DD hh:mm:ss"` times.
    pub zone: FixedOffset,
    /// Keep presigned query strings in `*_url` fields.
    pub keep_url_query: bool,
}

/// A decoded response body.
#[derive(Debug, PartialEq)]
pub enum Envelope {
    /// `code` 0 (or 1004, "empty result", which for a list is an empty page).
    Page(Page),
    /// Any other `code`, with the server's `msg`.
    ApiError {
        /// The API's `code` (see docs/api/auth-and-errors.md: 1000 and 1005 are transient).
        code: i64,
        /// Its `msg`, scrubbed of presigned credentials and cut to 200 characters.
        msg: String,
    },
}

/// One page of `list_task`.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// `data.total`: records in the whole window. `None` when the server answered 1004
    /// without data, which says nothing about the window.
    pub total: Option<u64>,
    /// The page's records, in server order.
    pub records: Vec<Record>,
    /// Fields whose value had an unusable type and were stored as null.
    pub nulled_fields: u64,
    /// Tasks whose `create_time` came as a local-time string, read in the configured
    /// zone: when such a task falls outside its window, the zone is the likely culprit.
    pub local_times: u64,
}

/// One element of `data.list`.
#[derive(Debug, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "tasks are nearly every record: boxing them would cost an allocation each"
)]
pub enum Record {
    Task(TaskRow),
    Reject(Reject),
}

/// A record that could not become a row, kept raw with the reason for the rejects file.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Why, in a phrase ("no task_id", "no usable create_time: ...").
    pub reason: String,
    /// The record exactly as received.
    pub raw: Value,
}

impl Record {
    /// The identity used to check a window is complete (distinct == total): the task_id,
    /// or for a reject its raw text, so that rejects count towards `total` too.
    pub fn identity(&self) -> Text {
        match self {
            Record::Task(t) => t.task_id.clone(),
            Record::Reject(r) => compact_str::format_compact!("\u{0}reject:{}", r.raw),
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
///
/// The fast path reads the envelope and every record straight into [`Field`]s borrowed
/// from the body, in one pass. A page it does not take as ordinary (another `code`, a
/// malformed envelope, a record to reject, a duplicate key) is decoded again through
/// `serde_json::Value` by [`decode_page_via_value`], which has the last word; the two
/// agree on every body (a property test and the fuzz target check it).
#[inline(never)] // a stage of bench/profile.sh: kept whole so that its share can be read
pub fn decode_page(body: &[u8], opts: &DecodeOptions) -> Result<Envelope, DecodeError> {
    match fast_page(body, opts) {
        Some(page) => Ok(Envelope::Page(page)),
        None => decode_page_via_value(body, opts),
    }
}

/// A page with `code` 0, when every record in it is an acceptable task; `None` otherwise.
/// One pass over the body, nothing but the kept strings allocated.
fn fast_page(body: &[u8], opts: &DecodeOptions) -> Option<Page> {
    // One UTF-8 check of the whole body, instead of one per string inside it.
    let envelope: FastEnvelope = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    let data = envelope.data?;
    let total = match (envelope.code.int(), data.total.int()) {
        (Ok(Some(0)), Ok(Some(t))) if t >= 0 => t as u64,
        _ => return None,
    };
    let list = data.list.unwrap_or_default();
    let mut page = Page { total: Some(total), records: Vec::with_capacity(list.len()), ..Page::default() };
    for FastRecord(fields) in &list {
        let task = task_from(fields, opts, &mut page.nulled_fields, &mut page.local_times).ok()?;
        page.records.push(Record::Task(task));
    }
    Some(page)
}

/// Decodes one response body through `serde_json::Value`: the reference decoder, and the
/// path of every body the fast path leaves alone.
pub fn decode_page_via_value(body: &[u8], opts: &DecodeOptions) -> Result<Envelope, DecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let top = value.as_object().ok_or_else(|| DecodeError::Malformed("the top level is not an object".into()))?;
    let code = match Field::from(top.get("code")).int() {
        Ok(Some(c)) => c,
        Ok(None) => return Err(DecodeError::Malformed("`code` is missing".into())),
        Err(Unusable) => {
            return Err(DecodeError::Malformed(format!("`code` is not a number: {}", short(top.get("code")))));
        }
    };
    let data = top.get("data").filter(|d| !d.is_null());
    match code {
        0 => {}
        1004 if data.is_none() => return Ok(Envelope::Page(Page::default())),
        1004 => {}
        _ => {
            // The server's words go into errors, logs and state.db: a URL in them may be presigned.
            let msg = top.get("msg").and_then(Value::as_str).unwrap_or("");
            let msg = crate::presigned::scrub(msg).chars().take(200).collect();
            return Ok(Envelope::ApiError { code, msg });
        }
    }
    let data = data
        .and_then(Value::as_object)
        .ok_or_else(|| DecodeError::Malformed("`data` is missing or not an object although `code` is 0".into()))?;
    let total = match Field::from(data.get("total")).int() {
        Ok(Some(t)) if t >= 0 => t as u64,
        _ => return Err(DecodeError::Malformed(format!("`data.total` is not a count: {}", short(data.get("total"))))),
    };
    let list = match data.get("list") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => {
            return Err(DecodeError::Malformed(format!("`data.list` is not an array: {}", short(Some(other)))));
        }
    };
    let mut page = Page { total: Some(total), records: Vec::with_capacity(list.len()), ..Page::default() };
    for raw in list {
        let record = decode_record(raw, opts, &mut page);
        page.records.push(record);
    }
    Ok(Envelope::Page(page))
}

/// One element of `data.list`, through `Value`.
fn decode_record(raw: &Value, opts: &DecodeOptions, page: &mut Page) -> Record {
    match raw.as_object() {
        Some(obj) => task_from(&RawTask::from_map(obj), opts, &mut page.nulled_fields, &mut page.local_times)
            .map(Record::Task)
            .unwrap_or_else(|why| Record::Reject(Reject { reason: why.reason(obj), raw: redact(raw, opts) })),
        None => Record::Reject(Reject { reason: "the record is not a JSON object".into(), raw: redact(raw, opts) }),
    }
}

/// The raw record as it goes to the rejects file: presigned query strings are removed from
/// `*_url` fields and signature parameters from every other string (unless
/// `keep_url_query`), as they are from stored rows.
fn redact(raw: &Value, opts: &DecodeOptions) -> Value {
    let mut raw = raw.clone();
    if opts.keep_url_query {
        return raw;
    }
    if let Some(obj) = raw.as_object_mut() {
        for (key, value) in obj.iter_mut() {
            if key.ends_with("_url")
                && let Value::String(url) = value
            {
                *url = strip_query(url).to_string();
            }
        }
    }
    crate::presigned::scrub_json(&mut raw);
    raw
}

/// Why a record cannot become a row.
enum Unplaceable {
    NoTaskId,
    NoCreateTime,
}

impl Unplaceable {
    /// The reject reason, in a phrase.
    fn reason(&self, obj: &Map<String, Value>) -> String {
        match self {
            Unplaceable::NoTaskId => "no task_id".to_string(),
            Unplaceable::NoCreateTime => format!("no usable create_time: {}", short(obj.get("create_time"))),
        }
    }
}

/// Decodes one task object; `Err` is the reject reason. The page decoder does the same
/// field by field as it streams; this whole-object form checks the simulator's rendering.
#[cfg(test)]
pub(crate) fn decode_task(obj: &Map<String, Value>, opts: &DecodeOptions, nulled: &mut u64) -> Result<TaskRow, String> {
    task_from(&RawTask::from_map(obj), opts, nulled, &mut 0).map_err(|why| why.reason(obj))
}

/// The row of a task's fields; both paths end here. Counts nulled fields and local-time
/// create times.
fn task_from(raw: &RawTask, opts: &DecodeOptions, nulled: &mut u64, local: &mut u64) -> Result<TaskRow, Unplaceable> {
    let task_id = match raw.task_id.string() {
        Ok(Some(id)) => id,
        _ => return Err(Unplaceable::NoTaskId),
    };
    let create_time = match raw.create_time.time(opts.zone) {
        Ok(Some(t)) if t > 0 => t,
        _ => return Err(Unplaceable::NoCreateTime),
    };
    // Not a number, yet a time: a "YYYY-MM-DD hh:mm:ss" string read in `opts.zone`.
    *local += u64::from(raw.create_time.int().is_err());
    let mut s = |f: &Field| keep(f.string(), nulled);
    let (status, err_message, template_id, template_name) =
        (s(&raw.status), s(&raw.err_message), s(&raw.template_id), s(&raw.template_name));
    let (input, output, objkey, input_url, output_url) =
        (s(&raw.input), s(&raw.output), s(&raw.objkey), s(&raw.input_url), s(&raw.output_url));
    let (bucket, region, region_type) = (s(&raw.bucket), s(&raw.region), s(&raw.region_type));
    let mut row = TaskRow {
        task_id,
        status,
        err_code: keep(raw.err_code.int(), nulled),
        err_message,
        create_time,
        finish_time: keep(raw.finish_time.time(opts.zone), nulled),
        src_bitrate: keep(raw.src_bitrate.float(), nulled),
        dst_bitrate: keep(raw.dst_bitrate.float(), nulled),
        template_id,
        template_name,
        input,
        output,
        objkey,
        input_url,
        output_url,
        bucket,
        region,
        region_type,
        extra: raw.extra.as_ref().and_then(|fields| {
            let mut fields = Value::Object(fields.clone());
            if !opts.keep_url_query {
                crate::presigned::scrub_json(&mut fields);
            }
            serde_json::to_string(&fields).ok()
        }),
    };
    if !opts.keep_url_query {
        crate::presigned::scrub_columns(&mut row);
    }
    Ok(row)
}

/// A field's value, or `None` (counted in `nulled`) when its type was unusable.
fn keep<T>(value: Result<Option<T>, Unusable>, nulled: &mut u64) -> Option<T> {
    value.unwrap_or_else(|Unusable| {
        *nulled += 1;
        None
    })
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
