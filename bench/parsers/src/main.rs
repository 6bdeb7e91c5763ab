//! Times JSON parsers on list_task pages as the simulator renders them (quirks included):
//! each parses the same bodies into the same borrowed serde types (the decoder's
//! `Field`s), then tasksync's whole decoder (parse + rows) runs for scale.
//! Prints one line per parser: `parser=NAME mb_per_s=.. us_per_page=..`.
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;
use tasksync::api::decode::{DecodeOptions, decode_page};
use tasksync::api::field::Field;
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
        tasksync::api::decode::Envelope::Page(p) => p.records.len(),
        _ => 0,
    });
}
