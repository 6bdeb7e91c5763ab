//! A corpus of malformed responses (tests/corpus/ and generated pages): each is tolerated or
//! leaves the window for the next run with one clear sentence; never a panic; what was already written stays,
//! and the checkpoint does not move past it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use axum::extract::Query;
use tasksync::plan::Window;
use tasksync::row::{StoredRow, TaskRow};
use tasksync::sync::{backfill_job_id, run_backfill};

type Responder = Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>;

/// Serves `respond(start_num)` for every request; counts requests.
async fn serve(respond: Responder) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/api/list_task",
        axum::routing::get(move |Query(q): Query<Vec<(String, String)>>| {
            let (respond, h) = (respond.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let offset = q.iter().find(|(k, _)| k == "start_num").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                respond(offset)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, hits, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

fn corpus(name: &str) -> Responder {
    let body = std::fs::read(format!("{}/tests/corpus/{name}.body", env!("CARGO_MANIFEST_DIR"))).unwrap();
    Arc::new(move |_| body.clone())
}

fn task(i: u64) -> serde_json::Value {
    serde_json::json!({ "task_id": format!("g{i}"), "create_time": D0 + 100 + i as i64, "status": "success" })
}

fn page(list: Vec<serde_json::Value>, total: u64) -> Vec<u8> {
    serde_json::json!({ "code": 0, "msg": "success", "data": { "list": list, "num": 0, "total": total } })
        .to_string()
        .into_bytes()
}

/// A partition of D0 written by an earlier run, which no bad response may damage.
fn existing_rows(out: &std::path::Path) -> Vec<StoredRow> {
    let rows = vec![StoredRow {
        task: TaskRow { finish_time: Some(D0 + 60), ..example_task("kept", D0 + 50) },
        first_seen_at: 1,
        changed_at: 1,
        observed_seq: 1,
        deleted_at: None,
    }];
    write_partition(out, "2021-10-01", &rows);
    rows
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

enum Expect {
    /// The run succeeds and stores these task ids besides the existing one.
    Tolerated(Vec<String>),
    /// The window is left for the next run with a sentence containing this, naming the
    /// window; the run itself does not fail.
    LeftBehind(&'static str),
}

async fn case(name: &str, respond: Responder, extra_api: &str, expect: Expect) {
    let (url, hits, server) = serve(respond).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let before = existing_rows(&out);
    let file = out.join("tasks/create_date=2021-10-01/part-0.parquet");
    let bytes_before = std::fs::read(&file).unwrap();
    let range = Window::new(D0, D0 + DAY);
    let result = run_backfill(
        config(&url, dir.path(), SK, &format!("auth = \"none\"\nmax_retries = 2\n{extra_api}")),
        fixed(D0 + DAY + 600),
        range,
    )
    .await;
    server.abort();
    let state = tasksync::state::State::open(&dir.path().join("state/state.db")).unwrap();
    let done = state.done_intervals(&backfill_job_id(range)).unwrap();
    match expect {
        Expect::Tolerated(ids) => {
            result.unwrap_or_else(|e| panic!("{name}: expected to be tolerated, failed: {e}"));
            let mut got: Vec<String> =
                stored(&out).into_iter().map(|(_, r)| r.task.task_id.to_string()).filter(|id| id != "kept").collect();
            got.sort();
            let mut ids = ids;
            ids.sort();
            assert_eq!(got, ids, "{name}");
            assert_eq!(done, vec![(range.start, range.end)], "{name}: the window is checkpointed");
        }
        Expect::LeftBehind(phrase) => {
            let totals = result.unwrap_or_else(|e| panic!("{name}: the run failed instead of leaving the window: {e}"));
            let e = totals.left_behind.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            assert!(e.contains(phrase) && e.contains("[2021-10-01T00:00:00Z"), "{name}: {e}");
            assert!(!e.contains('\n'), "{name}: one line: {e}");
            let left = state.left_behind(None).unwrap();
            assert_eq!((left.len(), left[0].start, left[0].end), (1, range.start, range.end), "{name}: recorded");
            assert_eq!(std::fs::read(&file).unwrap(), bytes_before, "{name}: the existing file is untouched");
            assert_eq!(stored(&out).into_iter().map(|(_, r)| r).collect::<Vec<_>>(), before);
            assert!(done.is_empty(), "{name}: the checkpoint did not move");
        }
    }
    assert!(hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_response_is_tolerated_or_leaves_the_window_for_the_next_run() {
    let cases: Vec<(&str, Responder, &str, Expect)> = vec![
        ("truncated_json", corpus("truncated_json"), "", Expect::LeftBehind("the body is not JSON")),
        ("html_error_page", corpus("html_error_page"), "", Expect::LeftBehind("the body is not JSON")),
        ("data_null_with_code_0", corpus("data_null_with_code_0"), "", Expect::LeftBehind("`data` is missing")),
        ("negative_total", corpus("negative_total"), "", Expect::LeftBehind("`data.total` is not a count")),
        ("invalid_utf8", corpus("invalid_utf8"), "", Expect::LeftBehind("the body is not JSON")),
        ("bad_param_code", corpus("bad_param_code"), "", Expect::LeftBehind("code 1002")),
        ("lack_param_code", corpus("lack_param_code"), "", Expect::LeftBehind("code 1001")),
        ("unknown_code", corpus("unknown_code"), "", Expect::LeftBehind("code 4242")),
        ("wrong_types", corpus("wrong_types"), "", Expect::Tolerated(ids(&["12345", "w1"]))),
        ("negative_and_huge_numbers", corpus("negative_and_huge_numbers"), "", Expect::Tolerated(ids(&["n1", "n2"]))),
        ("duplicate_task_ids", corpus("duplicate_task_ids"), "", Expect::Tolerated(ids(&["d1"]))),
        ("undecodable_records", corpus("undecodable_records"), "", Expect::Tolerated(ids(&["r1"]))),
        ("unknown_fields", corpus("unknown_fields"), "", Expect::Tolerated(ids(&["u1", "u2"]))),
        // A number JSON readers cannot hold, in a field we do not know: the page is refused
        // by both decoder paths, naming the place, and the window waits (fuzz finding).
        (
            "unknown_data_key_beyond_f64",
            corpus("unknown_data_key_beyond_f64"),
            "",
            Expect::LeftBehind("the body is not JSON (number out of range at line 1 column"),
        ),
        (
            "unknown_field_beyond_f64",
            corpus("unknown_field_beyond_f64"),
            "",
            Expect::LeftBehind("the body is not JSON (number out of range at line 1 column"),
        ),
        (
            "body_larger_than_the_cap",
            Arc::new(|_| page((0..200).map(task).collect(), 200)),
            "max_body_bytes = 4096",
            Expect::LeftBehind("larger than api.max_body_bytes"),
        ),
        (
            "page_larger_than_count",
            Arc::new(|_| page((0..3).map(task).collect(), 3)),
            "page_size = 2",
            Expect::Tolerated(ids(&["g0", "g1", "g2"])),
        ),
        (
            // A total that moves between pages proves nothing (a deletion shifts the
            // offsets and can hide a live task behind a count that matches): never settled.
            "total_changes_between_pages",
            Arc::new(|offset| match offset {
                0 => page((0..100).map(task).collect(), 150),
                _ => page((100..120).map(task).collect(), 120),
            }),
            "repage_attempts = 2",
            Expect::LeftBehind("stayed incomplete"),
        ),
        (
            "total_larger_than_what_is_served",
            Arc::new(|offset| if offset == 0 { page((0..5).map(task).collect(), 8) } else { page(vec![], 8) }),
            "repage_attempts = 2",
            Expect::LeftBehind("stayed incomplete"),
        ),
    ];
    for (name, respond, extra, expect) in cases {
        case(name, respond, extra, expect).await;
    }
}
