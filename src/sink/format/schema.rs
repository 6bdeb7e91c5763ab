//! The Arrow schema of the output (docs/contract.md's columns) and row <-> batch conversion.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::row::{StoredRow, TaskRow};

const STRING_COLUMNS: [&str; 13] = [
    "status",
    "err_message",
    "template_id",
    "template_name",
    "input",
    "output",
    "objkey",
    "input_url",
    "output_url",
    "bucket",
    "region",
    "region_type",
    "task_id",
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The output schema; column names are fixed by the contract, order is ours.
pub fn schema() -> SchemaRef {
    let s = |name: &str| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("task_id", DataType::Utf8, false),
        s("status"),
        Field::new("err_code", DataType::Int64, true),
        s("err_message"),
        Field::new("create_time", ts(), false),
        Field::new("finish_time", ts(), true),
        Field::new("duration_s", DataType::Int64, true),
        Field::new("src_bitrate", DataType::Float64, true),
        Field::new("dst_bitrate", DataType::Float64, true),
        s("template_id"),
        s("template_name"),
        s("input"),
        s("output"),
        s("objkey"),
        s("input_url"),
        s("output_url"),
        s("bucket"),
        s("region"),
        s("region_type"),
        Field::new("first_seen_at", ts(), false),
        Field::new("changed_at", ts(), false),
        s("extra"),
        Field::new("observed_seq", DataType::Int64, false),
        Field::new("deleted_at", ts(), true),
    ]))
}

fn micros(secs: Option<i64>) -> Option<i64> {
    secs.map(crate::time::micros_from_secs)
}

/// Rows -> one record batch in the output schema.
pub fn to_batch(rows: &[StoredRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    // Sized up front: growing the value buffer row by row was 4 % of a backfill's CPU.
    let strings = |f: fn(&TaskRow) -> Option<&str>| -> ArrayRef {
        let bytes = rows.iter().map(|r| f(&r.task).map_or(0, str::len)).sum();
        let mut b = StringBuilder::with_capacity(rows.len(), bytes);
        rows.iter().for_each(|r| b.append_option(f(&r.task)));
        Arc::new(b.finish())
    };
    let ints = |f: fn(&StoredRow) -> Option<i64>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<Int64Array>()) };
    let floats = |f: fn(&TaskRow) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(|r| f(&r.task)).collect::<Float64Array>())
    };
    let times = |f: fn(&StoredRow) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<TimestampMicrosecondArray>().with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        strings(|t| Some(t.task_id.as_str())),
        strings(|t| t.status.as_deref()),
        ints(|r| r.task.err_code),
        strings(|t| t.err_message.as_deref()),
        times(|r| micros(Some(r.task.create_time))),
        times(|r| micros(r.task.finish_time)),
        ints(|r| r.task.duration_s()),
        floats(|t| t.src_bitrate),
        floats(|t| t.dst_bitrate),
        strings(|t| t.template_id.as_deref()),
        strings(|t| t.template_name.as_deref()),
        strings(|t| t.input.as_deref()),
        strings(|t| t.output.as_deref()),
        strings(|t| t.objkey.as_deref()),
        strings(|t| t.input_url.as_deref()),
        strings(|t| t.output_url.as_deref()),
        strings(|t| t.bucket.as_deref()),
        strings(|t| t.region.as_deref()),
        strings(|t| t.region_type.as_deref()),
        times(|r| Some(r.first_seen_at)),
        times(|r| Some(r.changed_at)),
        strings(|t| t.extra.as_deref()),
        ints(|r| Some(r.observed_seq)),
        times(|r| r.deleted_at),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// Typed access to a batch's columns by name, with a message naming what is missing.
struct Columns<'a>(&'a RecordBatch);

impl<'a> Columns<'a> {
    fn get<T: 'static>(&self, name: &str) -> Result<&'a T, String> {
        let column = self.0.column_by_name(name).ok_or_else(|| format!("column `{name}` is missing"))?;
        column.as_any().downcast_ref::<T>().ok_or_else(|| format!("column `{name}` has type {}", column.data_type()))
    }

    /// A column added after the first files were written: `None` where it is absent.
    fn optional<T: 'static>(&self, name: &str) -> Result<Option<&'a T>, String> {
        if self.0.column_by_name(name).is_none() { Ok(None) } else { self.get::<T>(name).map(Some) }
    }
}

fn opt<A: Array, T>(a: &A, i: usize, v: impl Fn(&A, usize) -> T) -> Option<T> {
    if a.is_null(i) { None } else { Some(v(a, i)) }
}

/// One record batch (as written by [`to_batch`]) -> rows. Unknown extra columns are ignored.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<StoredRow>, String> {
    let c = Columns(batch);
    let mut strings = std::collections::HashMap::new();
    for name in STRING_COLUMNS {
        strings.insert(name, c.get::<StringArray>(name)?);
    }
    let s = |name: &str, i: usize| opt(strings[name], i, |a, i| crate::row::Text::from(a.value(i)));
    let err_code = c.get::<Int64Array>("err_code")?;
    let (src, dst) = (c.get::<Float64Array>("src_bitrate")?, c.get::<Float64Array>("dst_bitrate")?);
    let create = c.get::<TimestampMicrosecondArray>("create_time")?;
    let finish = c.get::<TimestampMicrosecondArray>("finish_time")?;
    let first = c.get::<TimestampMicrosecondArray>("first_seen_at")?;
    let changed = c.get::<TimestampMicrosecondArray>("changed_at")?;
    // Files written before these columns existed: no unknown fields were kept, and they
    // hold the oldest observations of all.
    let extra = c.optional::<StringArray>("extra")?;
    let observed = c.optional::<Int64Array>("observed_seq")?;
    let deleted = c.optional::<TimestampMicrosecondArray>("deleted_at")?;
    let secs = |a: &TimestampMicrosecondArray, i: usize| opt(a, i, |a, i| a.value(i).div_euclid(1_000_000));
    (0..batch.num_rows())
        .map(|i| {
            let task = TaskRow {
                task_id: s("task_id", i).ok_or("a task_id is null")?,
                status: s("status", i),
                err_code: opt(err_code, i, |a, i| a.value(i)),
                err_message: s("err_message", i),
                create_time: secs(create, i).ok_or("a create_time is null")?,
                finish_time: secs(finish, i),
                src_bitrate: opt(src, i, |a, i| a.value(i)),
                dst_bitrate: opt(dst, i, |a, i| a.value(i)),
                template_id: s("template_id", i),
                template_name: s("template_name", i),
                input: s("input", i),
                output: s("output", i),
                objkey: s("objkey", i),
                input_url: s("input_url", i),
                output_url: s("output_url", i),
                bucket: s("bucket", i),
                region: s("region", i),
                region_type: s("region_type", i),
                extra: extra.and_then(|a| opt(a, i, |a, i| a.value(i).to_string())),
            };
            let first_seen_at = opt(first, i, |a, i| a.value(i)).ok_or("a first_seen_at is null")?;
            let changed_at = opt(changed, i, |a, i| a.value(i)).ok_or("a changed_at is null")?;
            let observed_seq = observed.map_or(0, |a| a.value(i));
            let deleted_at = deleted.and_then(|a| opt(a, i, |a, i| a.value(i)));
            Ok(StoredRow { task, first_seen_at, changed_at, observed_seq, deleted_at })
        })
        .collect()
}
