//! Rewrites every partition of a data directory under several Parquet writer settings and
//! prints the bytes of each, to choose the writer's settings by measurement.
//! Usage: cargo run --release --example layout_experiment -- DATA_DIR
use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("DATA_DIR"));
    let mut batches = Vec::new();
    for entry in std::fs::read_dir(dir.join("tasks")).unwrap() {
        let rows = tasksync::sink::format::reader::read_file(&entry.unwrap().path().join("part-0.parquet")).unwrap();
        batches.push(tasksync::sink::format::schema::to_batch(&rows).unwrap());
    }
    let zstd = |l| Compression::ZSTD(ZstdLevel::try_new(l).unwrap());
    let unique = ["task_id", "input", "output", "objkey", "input_url", "output_url"];
    let no_dict = |mut b: parquet::file::properties::WriterPropertiesBuilder| {
        for c in unique {
            b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
        }
        b
    };
    let delta_ts = |mut b: parquet::file::properties::WriterPropertiesBuilder| {
        for c in ["create_time", "finish_time", "first_seen_at", "changed_at", "duration_s"] {
            b = b
                .set_column_dictionary_enabled(ColumnPath::from(c), false)
                .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
        }
        b
    };
    let chosen = tasksync::sink::format::writer::writer_properties();
    let rows_per_group = |props: &WriterProperties, level: i32, rows: usize| {
        let mut b = props.clone().into_builder().set_compression(zstd(level));
        b = b.set_max_row_group_row_count(Some(rows));
        b.build()
    };
    let variants: Vec<(&str, WriterProperties)> = vec![
        ("chosen (writer_properties)", chosen.clone()),
        ("chosen, zstd3", rows_per_group(&chosen, 3, tasksync::sink::format::writer::ROW_GROUP_ROWS)),
        ("chosen, zstd1, 122,880-row groups", rows_per_group(&chosen, 1, 122_880)),
        ("chosen, zstd3, 122,880-row groups", rows_per_group(&chosen, 3, 122_880)),
        ("chosen, zstd1, 4,096-row groups", rows_per_group(&chosen, 1, 4_096)),
        ("chosen, zstd1, 16,384-row groups", rows_per_group(&chosen, 1, 16_384)),
        ("chosen, zstd1, 32,768-row groups", rows_per_group(&chosen, 1, 32_768)),
        ("arrow-rs defaults, zstd3", WriterProperties::builder().set_compression(zstd(3)).build()),
        ("zstd6", WriterProperties::builder().set_compression(zstd(6)).build()),
        (
            "v2 pages",
            WriterProperties::builder().set_compression(zstd(3)).set_writer_version(WriterVersion::PARQUET_2_0).build(),
        ),
        ("no dict on unique strings", no_dict(WriterProperties::builder().set_compression(zstd(3))).build()),
        ("no dict + delta times", delta_ts(no_dict(WriterProperties::builder().set_compression(zstd(3)))).build()),
        (
            "no dict + delta times + chunk stats",
            delta_ts(no_dict(WriterProperties::builder().set_compression(zstd(3))))
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .build(),
        ),
        (
            "no dict + delta + v2",
            delta_ts(no_dict(WriterProperties::builder().set_compression(zstd(3))))
                .set_writer_version(WriterVersion::PARQUET_2_0)
                .build(),
        ),
    ];
    for (name, props) in variants {
        let started = std::time::Instant::now();
        let mut total = 0;
        for b in &batches {
            let mut buf = Vec::new();
            let mut w =
                ArrowWriter::try_new(&mut buf, tasksync::sink::format::schema::schema(), Some(props.clone())).unwrap();
            w.write(b).unwrap();
            w.close().unwrap();
            total += buf.len();
        }
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        println!(
            "{name:40} bytes={total} per_row={:.1} encode_s={:.2}",
            total as f64 / rows as f64,
            started.elapsed().as_secs_f64()
        );
    }
    let _ = Arc::new(());
}
