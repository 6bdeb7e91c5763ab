//! The engines analysts scale out to read the data set as DuckDB does: Polars and Spark
//! (local mode, Java 17) agree with DuckDB, and DuckDB with the simulator's truth, on rows,
//! distinct task_ids, the create_time range, the partitions and every column's type.
//! Needs `duckdb`, `polars` and `pyspark` for Python (`.ci/run` installs them).

use crate::common::*;
use tasksync::simulator::SimOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polars_and_spark_read_the_data_set_as_duckdb_does_and_duckdb_as_the_truth_says() {
    let now = D0 + 3 * DAY;
    let world = Scenario::start(spec(81, 3_000, 3), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = world.config("");
    tasksync::sync::run_backfill(cfg, fixed(now), tasksync::plan::Window::new(D0, now)).await.unwrap();
    let out = dir.path().join("out");
    let truth = sim.sim.truth(D0, now, false);
    assert_exact(&out, &truth);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/engines/compare.py");
    let ran = tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(script).arg(&out).output())
        .await
        .unwrap()
        .expect("python3 runs");
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&ran.stdout).expect("one JSON object");
    let duckdb = &seen["duckdb"];
    for engine in ["polars", "spark"] {
        for key in ["rows", "task_ids", "min_create", "max_create", "partitions", "types"] {
            assert_eq!(seen[engine][key], duckdb[key], "{engine} and DuckDB disagree on {key}: {seen}");
        }
    }
    let (lo, hi) = (truth.iter().map(|t| t.create_time).min(), truth.iter().map(|t| t.create_time).max());
    assert_eq!(duckdb["rows"], truth.len());
    assert_eq!(duckdb["task_ids"], truth.len());
    assert_eq!((duckdb["min_create"].as_i64(), duckdb["max_create"].as_i64()), (lo, hi));
    assert_eq!(duckdb["partitions"], serde_json::json!(["2021-10-01", "2021-10-02", "2021-10-03"]));
    let types = duckdb["types"].as_object().unwrap();
    for (column, kind) in
        [("task_id", "string"), ("create_time", "timestamp"), ("err_code", "int"), ("src_bitrate", "float")]
    {
        assert_eq!(types[column], kind, "{column} in {types:?}");
    }
    assert_eq!(types["create_date"], "date", "the partition column reads as a date in each engine");
}
