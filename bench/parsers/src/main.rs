//! Times JSON parsers on list_task pages as the simulator renders them (quirks included):
//! each parses the same bodies into the same borrowed serde types (the decoder's
//! `Field`s), then tasksync's whole decoder (parse + rows) runs for scale.
//! Prints one line per parser: `parser=NAME mb_per_s=.. us_per_page=..`.
//! Then the columnar question of issue 15: tasksync's pages to an Arrow batch as built
//! today (`decode_page`, `TaskRow`s, `to_batch`) against a prototype that appends the
//! parsed fields straight to column builders, with the same conversions but none of the
//! decoder's checks, rejects or `extra` column: what a rewrite could save, at most.
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use tasksync::source::decode::{DecodeOptions, Record, decode_page};
use tasksync::source::field::Field;
use tasksync::row::{StoredRow, strip_query};
use tasksync::simulator::dataset::{DatasetSpec, generate};
use tasksync::simulator::render::{render, service_zone};

#[derive(Deserialize)]
#[allow(dead_code)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    code: Field<'a>,
    #[serde(borrow, default)]
    msg: Field<'a>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Data<'a> {
    #[serde(borrow, default)]
    total: Field<'a>,
    #[serde(borrow, default)]
    num: Field<'a>,
    #[serde(borrow)]
    list: Vec<Task<'a>>,
}

/// The documented fields; others are skipped by every parser alike.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Task<'a> {
    #[serde(borrow, default)]
    task_id: Field<'a>,
    #[serde(borrow, default)]
    status: Field<'a>,
    #[serde(borrow, default)]
    err_code: Field<'a>,
    #[serde(borrow, default)]
    err_message: Field<'a>,
    #[serde(borrow, default)]
    create_time: Field<'a>,
    #[serde(borrow, default)]
    finish_time: Field<'a>,
    #[serde(borrow, default)]
    src_bitrate: Field<'a>,
    #[serde(borrow, default)]
    dst_bitrate: Field<'a>,
    #[serde(borrow, default)]
    template_id: Field<'a>,
    #[serde(borrow, default)]
    template_name: Field<'a>,
    #[serde(borrow, default)]
    input: Field<'a>,
    #[serde(borrow, default)]
    output: Field<'a>,
    #[serde(borrow, default)]
    objkey: Field<'a>,
    #[serde(borrow, default)]
    input_url: Field<'a>,
    #[serde(borrow, default)]
    output_url: Field<'a>,
    #[serde(borrow, default)]
    bucket: Field<'a>,
    #[serde(borrow, default)]
    region: Field<'a>,
    #[serde(borrow, default)]
    region_type: Field<'a>,
}

/// Pages of 100 tasks, rendered the way the simulator serves them.
fn pages(n: usize) -> Vec<Vec<u8>> {
    let end = 1_750_000_000;
    let spec = DatasetSpec {
        seed: 7,
        tasks: n as u64 * 100,
        start: end - 30 * 86_400,
        end,
        hot_hour: None,
        bad_per_million: 0,
    };
    let tasks = generate(&spec);
    tasks
        .chunks(100)
        .map(|page| {
            let list: Vec<_> = page.iter().map(|t| render(&t.row_at(end), t.quirks, false)).collect();
            let body = json!({"code": 0, "msg": "success", "data": {"total": tasks.len().to_string(), "num": list.len(), "list": list}});
            serde_json::to_vec(&body).unwrap()
        })
        .collect()
}

/// Runs `parse` over every page `rounds` times; returns tasks seen, to keep the work.
fn time(name: &str, bodies: &[Vec<u8>], rounds: usize, mut parse: impl FnMut(&[u8]) -> usize) {
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut seen = 0;
        for b in bodies {
            seen += parse(b);
        }
        assert_eq!(seen, bodies.len() * 100, "{name} read every task");
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "parser={name} mb_per_s={:.0} us_per_page={:.1}",
        bytes as f64 / best / 1e6,
        best * 1e6 / bodies.len() as f64
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let bodies = pages(n);
    let mb = bodies.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!("pages={n} mb={mb:.1} (best of 5 rounds each)");
    let len = |e: Envelope| e.data.map_or(0, |d| d.list.len());
    time("serde_json", &bodies, 5, |b| len(serde_json::from_slice(b).unwrap()));
    time("sonic-rs", &bodies, 5, |b| len(sonic_rs::from_slice(b).unwrap()));
    // simd-json parses in place: the copy a real use would not need is made outside the timing.
    let mut copies = bodies.clone();
    let mut best = f64::MAX;
    for _ in 0..5 {
        copies.clone_from(&bodies);
        let started = Instant::now();
        let seen: usize = copies.iter_mut().map(|b| len(simd_json::serde::from_slice(b).unwrap())).sum();
        assert_eq!(seen, bodies.len() * 100);
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!("parser=simd-json mb_per_s={:.0} us_per_page={:.1}", mb / best, best * 1e6 / bodies.len() as f64);
    let opts = DecodeOptions { zone: service_zone(), keep_url_query: false };
    time("tasksync decode_page (serde_json + rows)", &bodies, 5, |b| match decode_page(b, &opts).unwrap() {
        tasksync::source::decode::Envelope::Page(p) => p.records.len(),
        _ => 0,
    });
    let today = |b: &[u8]| {
        let tasksync::source::decode::Envelope::Page(p) = decode_page(b, &opts).unwrap() else { return 0 };
        let rows: Vec<StoredRow> = p
            .records
            .into_iter()
            .filter_map(|r| match r {
                Record::Task(task) => Some(StoredRow { task, first_seen_at: 1, changed_at: 1, observed_seq: 1 }),
                Record::Reject(_) => None,
            })
            .collect();
        tasksync::sink::format::schema::to_batch(&rows).unwrap().num_rows()
    };
    time("today: decode_page + TaskRows + to_batch", &bodies, 5, today);
    time("prototype: serde_json Fields straight to builders", &bodies, 5, |b| columnar(b).num_rows());
}

/// The prototype: the page's tasks appended to one builder per column as they are read.
#[inline(never)] // its instructions are read by callgrind
fn columnar(body: &[u8]) -> RecordBatch {
    let e: Envelope = serde_json::from_slice(body).unwrap();
    let list = e.data.map(|d| d.list).unwrap_or_default();
    let zone = service_zone();
    let n = list.len();
    let mut strings: Vec<StringBuilder> = (0..14).map(|_| StringBuilder::with_capacity(n, n * 48)).collect();
    let mut ints: Vec<Int64Builder> = (0..3).map(|_| Int64Builder::with_capacity(n)).collect();
    let mut floats: Vec<Float64Builder> = (0..2).map(|_| Float64Builder::with_capacity(n)).collect();
    let mut times: Vec<TimestampMicrosecondBuilder> =
        (0..4).map(|_| TimestampMicrosecondBuilder::with_capacity(n)).collect();
    for t in &list {
        let created = t.create_time.time(zone).ok().flatten().unwrap_or(0);
        let finished = t.finish_time.time(zone).ok().flatten().filter(|&f| f > 0);
        let plain = [
            &t.task_id,
            &t.status,
            &t.err_message,
            &t.template_id,
            &t.template_name,
            &t.input,
            &t.output,
            &t.objkey,
            &t.bucket,
            &t.region,
            &t.region_type,
        ];
        for (b, f) in strings.iter_mut().zip(plain) {
            match f {
                Field::Str(s) => b.append_value(s.trim()),
                _ => b.append_null(),
            }
        }
        for (b, f) in strings[11..13].iter_mut().zip([&t.input_url, &t.output_url]) {
            match f {
                Field::Str(s) => b.append_value(strip_query(s)),
                _ => b.append_null(),
            }
        }
        strings[13].append_null(); // extra
        ints[0].append_option(t.err_code.int().ok().flatten());
        ints[1].append_option(finished.map(|f| f - created));
        ints[2].append_value(1);
        floats[0].append_option(t.src_bitrate.float().ok().flatten());
        floats[1].append_option(t.dst_bitrate.float().ok().flatten());
        times[0].append_value(created * 1_000_000);
        times[1].append_option(finished.map(|f| f * 1_000_000));
        times[2].append_value(1);
        times[3].append_value(1);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(24);
    columns.extend(strings.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(ints.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(floats.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(times.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_from_iter(columns.into_iter().enumerate().map(|(i, c)| (format!("c{i}"), c))).unwrap()
}
