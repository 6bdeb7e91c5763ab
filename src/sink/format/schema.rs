//! The columns of `tasks/` (docs/contract.md), in one table: each column's name, Arrow type,
//! whether it may be null, how its Parquet pages are encoded, how a row gives its value and
//! how a value sets a row. The schema, row -> batch and batch -> row conversions and the
//! writer's per-column settings all read [`COLUMNS`], so a new column is one entry.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::row::{StoredRow, TaskRow, Text};

/// How a column holds its value, and the row's accessors for it.
pub enum Access {
    /// A string (`Utf8`).
    Text(fn(&StoredRow) -> Option<&str>, fn(&mut StoredRow, Option<Text>)),
    /// An `Int64`; `None` as setter: derived from other columns, never read back.
    Int(fn(&StoredRow) -> Option<i64>, Option<fn(&mut StoredRow, Option<i64>)>),
    /// A `Float64`.
    Float(fn(&StoredRow) -> Option<f64>, fn(&mut StoredRow, Option<f64>)),
    /// A UTC timestamp in microseconds.
    Time(fn(&StoredRow) -> Option<i64>, fn(&mut StoredRow, Option<i64>)),
}

/// One column of `tasks/`.
pub struct Column {
    /// Its name, fixed by the contract.
    pub name: &'static str,
    /// May it be null? A required column's null makes its file unreadable.
    pub nullable: bool,
    /// Files written before it existed lack it; reading them gives the row's default.
    pub added_later: bool,
    /// Its values are (nearly) unique per task: no dictionary (it would only add a page
    /// that is thrown away, and readers pay for the fallback).
    pub no_dictionary: bool,
    /// Sorted or close together: delta-encoded.
    pub delta: bool,
    /// Its type and accessors.
    pub access: Access,
}

/// A nullable column with the writer's default encoding.
const fn col(name: &'static str, access: Access) -> Column {
    Column { name, nullable: true, added_later: false, no_dictionary: false, delta: false, access }
}

/// A nullable string column.
const fn text(
    name: &'static str,
    get: fn(&StoredRow) -> Option<&str>,
    set: fn(&mut StoredRow, Option<Text>),
) -> Column {
    col(name, Access::Text(get, set))
}

/// The columns, in file order (names fixed by the contract, order ours).
pub const COLUMNS: [Column; 24] = [
    Column {
        nullable: false,
        no_dictionary: true,
        ..text("task_id", |r| Some(r.task.task_id.as_str()), |r, v| r.task.task_id = v.unwrap_or_default())
    },
    text("status", |r| r.task.status.as_deref(), |r, v| r.task.status = v),
    col("err_code", Access::Int(|r| r.task.err_code, Some(|r, v| r.task.err_code = v))),
    text("err_message", |r| r.task.err_message.as_deref(), |r, v| r.task.err_message = v),
    Column {
        nullable: false,
        no_dictionary: true,
        delta: true,
        ..col(
            "create_time",
            Access::Time(|r| Some(micros(r.task.create_time)), |r, v| r.task.create_time = secs(v.unwrap_or(0))),
        )
    },
    Column {
        no_dictionary: true,
        delta: true,
        ..col("finish_time", Access::Time(|r| r.task.finish_time.map(micros), |r, v| r.task.finish_time = v.map(secs)))
    },
    Column { no_dictionary: true, delta: true, ..col("duration_s", Access::Int(|r| r.task.duration_s(), None)) },
    Column {
        no_dictionary: true,
        ..col("src_bitrate", Access::Float(|r| r.task.src_bitrate, |r, v| r.task.src_bitrate = v))
    },
    Column {
        no_dictionary: true,
        ..col("dst_bitrate", Access::Float(|r| r.task.dst_bitrate, |r, v| r.task.dst_bitrate = v))
    },
    text("template_id", |r| r.task.template_id.as_deref(), |r, v| r.task.template_id = v),
    text("template_name", |r| r.task.template_name.as_deref(), |r, v| r.task.template_name = v),
    Column { no_dictionary: true, ..text("input", |r| r.task.input.as_deref(), |r, v| r.task.input = v) },
    Column { no_dictionary: true, ..text("output", |r| r.task.output.as_deref(), |r, v| r.task.output = v) },
    Column { no_dictionary: true, ..text("objkey", |r| r.task.objkey.as_deref(), |r, v| r.task.objkey = v) },
    Column { no_dictionary: true, ..text("input_url", |r| r.task.input_url.as_deref(), |r, v| r.task.input_url = v) },
    Column {
        no_dictionary: true,
        ..text("output_url", |r| r.task.output_url.as_deref(), |r, v| r.task.output_url = v)
    },
    text("bucket", |r| r.task.bucket.as_deref(), |r, v| r.task.bucket = v),
    text("region", |r| r.task.region.as_deref(), |r, v| r.task.region = v),
    text("region_type", |r| r.task.region_type.as_deref(), |r, v| r.task.region_type = v),
    Column {
        nullable: false,
        no_dictionary: true,
        delta: true,
        ..col("first_seen_at", Access::Time(|r| Some(r.first_seen_at), |r, v| r.first_seen_at = v.unwrap_or(0)))
    },
    Column {
        nullable: false,
        no_dictionary: true,
        delta: true,
        ..col("changed_at", Access::Time(|r| Some(r.changed_at), |r, v| r.changed_at = v.unwrap_or(0)))
    },
    // Files written before these three existed kept no unknown fields, and hold the oldest
    // observations of all.
    Column {
        added_later: true,
        ..text("extra", |r| r.task.extra.as_deref(), |r, v| r.task.extra = v.map(|t| t.to_string()))
    },
    Column {
        nullable: false,
        added_later: true,
        ..col("observed_seq", Access::Int(|r| Some(r.observed_seq), Some(|r, v| r.observed_seq = v.unwrap_or(0))))
    },
    Column { added_later: true, ..col("deleted_at", Access::Time(|r| r.deleted_at, |r, v| r.deleted_at = v)) },
];

fn micros(secs: i64) -> i64 {
    crate::time::micros_from_secs(secs)
}

fn secs(micros: i64) -> i64 {
    micros.div_euclid(1_000_000)
}

impl Column {
    /// Its Arrow type.
    fn data_type(&self) -> DataType {
        match self.access {
            Access::Text(..) => DataType::Utf8,
            Access::Int(..) => DataType::Int64,
            Access::Float(..) => DataType::Float64,
            Access::Time(..) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// Its values in `rows`, as one Arrow array.
    fn array(&self, rows: &[StoredRow]) -> ArrayRef {
        match self.access {
            Access::Text(get, _) => {
                // Sized up front: growing the value buffer row by row was 4 % of a backfill's CPU.
                let bytes = rows.iter().map(|r| get(r).map_or(0, str::len)).sum();
                let mut b = StringBuilder::with_capacity(rows.len(), bytes);
                rows.iter().for_each(|r| b.append_option(get(r)));
                Arc::new(b.finish())
            }
            Access::Int(get, _) => Arc::new(rows.iter().map(get).collect::<Int64Array>()),
            Access::Float(get, _) => Arc::new(rows.iter().map(get).collect::<Float64Array>()),
            Access::Time(get, _) => {
                Arc::new(rows.iter().map(get).collect::<TimestampMicrosecondArray>().with_timezone("UTC"))
            }
        }
    }

    /// Sets this column of `rows` from `array`; a required column's null is an error.
    fn read_into(&self, array: &dyn Array, rows: &mut [StoredRow]) -> Result<(), String> {
        let wrong = || format!("column `{}` has type {}", self.name, array.data_type());
        if !self.nullable && array.null_count() > 0 {
            return Err(format!("a {} is null", self.name));
        }
        match self.access {
            Access::Text(_, set) => {
                let a = array.as_any().downcast_ref::<StringArray>().ok_or_else(wrong)?;
                rows.iter_mut().enumerate().for_each(|(i, r)| set(r, (!a.is_null(i)).then(|| Text::from(a.value(i)))));
            }
            Access::Int(_, None) => {}
            Access::Int(_, Some(set)) => {
                let a = array.as_any().downcast_ref::<Int64Array>().ok_or_else(wrong)?;
                rows.iter_mut().enumerate().for_each(|(i, r)| set(r, (!a.is_null(i)).then(|| a.value(i))));
            }
            Access::Float(_, set) => {
                let a = array.as_any().downcast_ref::<Float64Array>().ok_or_else(wrong)?;
                rows.iter_mut().enumerate().for_each(|(i, r)| set(r, (!a.is_null(i)).then(|| a.value(i))));
            }
            Access::Time(_, set) => {
                let a = array.as_any().downcast_ref::<TimestampMicrosecondArray>().ok_or_else(wrong)?;
                rows.iter_mut().enumerate().for_each(|(i, r)| set(r, (!a.is_null(i)).then(|| a.value(i))));
            }
        }
        Ok(())
    }
}

/// The output schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(COLUMNS.iter().map(|c| Field::new(c.name, c.data_type(), c.nullable)).collect::<Vec<_>>()))
}

/// Rows -> one record batch in the output schema.
pub fn to_batch(rows: &[StoredRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    RecordBatch::try_new(schema(), COLUMNS.iter().map(|c| c.array(rows)).collect())
}

/// A row with nothing set, which [`from_batch`] fills column by column.
fn blank() -> StoredRow {
    StoredRow {
        task: TaskRow::blank(Text::default(), 0),
        first_seen_at: 0,
        changed_at: 0,
        observed_seq: 0,
        deleted_at: None,
    }
}

/// One record batch (as written by [`to_batch`]) -> rows. Unknown extra columns are ignored;
/// a column added later and absent from the file leaves each row's default.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<StoredRow>, String> {
    let mut rows = vec![blank(); batch.num_rows()];
    for column in &COLUMNS {
        match batch.column_by_name(column.name) {
            Some(array) => column.read_into(array.as_ref(), &mut rows)?,
            // Derived (duration_s) or added after the first files were written.
            None if column.added_later || matches!(column.access, Access::Int(_, None)) => {}
            None => return Err(format!("column `{}` is missing", column.name)),
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_text() -> impl Strategy<Value = Option<Text>> {
        proptest::option::of("[a-z0-9 é/:?=&]{0,12}".prop_map(|s| Text::from(s.as_str())))
    }

    prop_compose! {
        fn arb_row()(id in "[a-z0-9]{1,10}", create in -1_000_000_000i64..4_000_000_000, finish in proptest::option::of(0i64..100_000),
                     status in arb_text(), strings in proptest::collection::vec(arb_text(), 12), code in proptest::option::of(any::<i64>()),
                     rates in (proptest::option::of(-1e9f64..1e9), proptest::option::of(-1e9f64..1e9)),
                     seen in (0i64..i64::MAX / 2, 0i64..i64::MAX / 2, any::<i64>()), deleted in proptest::option::of(0i64..i64::MAX / 2),
                     extra in proptest::option::of("\\{\"[a-z]{1,5}\":[0-9]{1,3}\\}")) -> StoredRow {
            let s = |i: usize| strings[i].clone();
            let task = TaskRow {
                task_id: Text::from(id.as_str()), status, err_code: code, err_message: s(0), create_time: create,
                finish_time: finish.map(|d| create + d), src_bitrate: rates.0, dst_bitrate: rates.1,
                template_id: s(1), template_name: s(2), input: s(3), output: s(4), objkey: s(5), input_url: s(6),
                output_url: s(7), bucket: s(8), region: s(9), region_type: s(10), extra,
            };
            StoredRow { task, first_seen_at: seen.0, changed_at: seen.1, observed_seq: seen.2, deleted_at: deleted }
        }
    }

    proptest! {
        /// Whatever a row holds, it comes back from its batch as it went in.
        #[test]
        fn a_row_comes_back_from_its_batch_unchanged(rows in proptest::collection::vec(arb_row(), 0..20)) {
            let batch = to_batch(&rows).unwrap();
            prop_assert_eq!(batch.num_columns(), COLUMNS.len());
            prop_assert_eq!(from_batch(&batch).unwrap(), rows);
        }
    }

    #[test]
    fn the_columns_are_the_contracts_in_file_order() {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "task_id",
                "status",
                "err_code",
                "err_message",
                "create_time",
                "finish_time",
                "duration_s",
                "src_bitrate",
                "dst_bitrate",
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
                "first_seen_at",
                "changed_at",
                "extra",
                "observed_seq",
                "deleted_at"
            ]
        );
        let required: Vec<&str> = COLUMNS.iter().filter(|c| !c.nullable).map(|c| c.name).collect();
        assert_eq!(required, ["task_id", "create_time", "first_seen_at", "changed_at", "observed_seq"]);
    }

    #[test]
    fn a_file_from_before_the_later_columns_reads_with_their_defaults_and_a_null_key_is_refused() {
        let task = TaskRow::example("t1", 1_000);
        let row = StoredRow { task, first_seen_at: 7, changed_at: 7, observed_seq: 9, deleted_at: Some(5) };
        let full = to_batch(std::slice::from_ref(&row)).unwrap();
        let keep: Vec<usize> = (0..full.num_columns())
            .filter(|&i| {
                !["extra", "observed_seq", "deleted_at", "duration_s"].contains(&full.schema().field(i).name().as_str())
            })
            .collect();
        let old = full.project(&keep).unwrap();
        let read = from_batch(&old).unwrap();
        assert_eq!((read[0].observed_seq, read[0].deleted_at, read[0].task.extra.as_deref()), (0, None, None));
        assert_eq!(read[0].task.task_id, row.task.task_id);

        let without_status: Vec<usize> =
            (0..full.num_columns()).filter(|&i| full.schema().field(i).name() != "status").collect();
        assert_eq!(from_batch(&full.project(&without_status).unwrap()).unwrap_err(), "column `status` is missing");
        let nulls = Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef;
        let mut columns = full.columns().to_vec();
        columns[0] = nulls;
        let fields: Vec<Field> =
            full.schema().fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
        let broken = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        assert_eq!(from_batch(&broken).unwrap_err(), "a task_id is null");
    }
}
