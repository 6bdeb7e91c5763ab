//! The simulator's HTTP face: `GET /api/list_task` (signed, quirky, faulty on request) and
//! `GET /_sim/stats` and `POST /_sim/now?to=UNIX` (the clock) for out-of-process tests and benchmarks.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::Simulator;
use super::dataset::mix;
use super::faults::{Fault, pick};
use crate::source::sign;

/// Serves the simulator on `listener` until the task is dropped or aborted.
pub async fn serve(listener: tokio::net::TcpListener, sim: Arc<Simulator>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/api/list_task", get(list_task))
        .route("/_sim/stats", get(stats))
        .route("/_sim/now", axum::routing::post(set_now))
        .with_state(sim);
    axum::serve(listener, app).await
}

async fn stats(State(sim): State<Arc<Simulator>>) -> Response {
    let s = &sim.stats;
    let body = json!({
        "now": sim.now(),
        "requests": s.requests.load(Ordering::SeqCst),
        "faults": s.faults.load(Ordering::SeqCst),
        "auth_refused": s.auth_refused.load(Ordering::SeqCst),
        "deep_refused": s.deep_refused.load(Ordering::SeqCst),
        "throttled": s.throttled.load(Ordering::SeqCst),
    });
    axum::Json(body).into_response()
}

/// `POST /_sim/now?to=UNIX`: moves the simulated clock, so that a benchmark in another
/// process can run passes over a simulated day (with `--freeze`, nothing else moves it).
async fn set_now(
    State(sim): State<Arc<Simulator>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    match q.get("to").and_then(|t| t.parse::<i64>().ok()) {
        Some(t) => {
            sim.set_now(t);
            axum::Json(json!({ "now": t })).into_response()
        }
        None => (StatusCode::BAD_REQUEST, "POST /_sim/now?to=UNIX_SECONDS\n").into_response(),
    }
}

fn api(code: i64, msg: &str) -> Response {
    axum::Json(json!({ "code": code, "msg": msg, "data": null })).into_response()
}

/// Every answer carries the simulator's own clock in `Date`, as a real server's carries its
/// own (which may lag the client's).
async fn list_task(
    State(sim): State<Arc<Simulator>>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let now = sim.tick();
    let latency = latency(&sim);
    let mut response = match throttle(&sim) {
        Some(refused) => refused,
        None => respond(&sim, &headers, pairs).await,
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Ok(date) = sign::http_date(now).parse() {
        response.headers_mut().insert(header::DATE, date);
    }
    response
}

/// This request's delay: `latency_ms`, jittered by up to a quarter either way.
fn latency(sim: &Simulator) -> std::time::Duration {
    let base = sim.options.latency_ms;
    if base == 0 {
        return std::time::Duration::ZERO;
    }
    let n = sim.stats.requests.load(Ordering::Relaxed);
    let spread = (base / 2).max(1);
    let jitter = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % (spread + 1);
    std::time::Duration::from_millis(base - base / 4 + jitter)
}

/// The gateway's answer beyond the rate limit: 429 with the seconds until a slot frees.
fn throttle(sim: &Simulator) -> Option<Response> {
    let limiter = sim.limiter.as_ref()?;
    let Err(not_until) = limiter.check() else { return None };
    sim.stats.throttled.fetch_add(1, Ordering::SeqCst);
    sim.stats.requests.fetch_add(1, Ordering::SeqCst);
    let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    Some(
        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs.to_string())], "rate limit exceeded")
            .into_response(),
    )
}

async fn respond(sim: &Arc<Simulator>, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Response {
    let (sim, headers) = (sim.clone(), headers.clone());
    let n = sim.stats.requests.fetch_add(1, Ordering::SeqCst);
    if let Some((ak, sk)) = &sim.options.keys
        && !signature_ok(&headers, &pairs, ak, sk)
    {
        sim.stats.auth_refused.fetch_add(1, Ordering::SeqCst);
        return api(1003, "auth fail");
    }
    let fault = pick(&sim.options.faults, sim.seed, n);
    if let Some(f) = fault {
        sim.stats.faults.fetch_add(1, Ordering::SeqCst);
        match f {
            Fault::Html500 => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                )
                    .into_response();
            }
            Fault::Unavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Fault::TooMany => {
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, sim.options.faults.retry_after_s.to_string())],
                )
                    .into_response();
            }
            Fault::Code1000 => return api(1000, "internal error"),
            // Real services name the object they failed on, presigned URL and all.
            Fault::Code1005 => {
                return api(1005, "operation fail: https://b.tos-cn-beijing.volces.com/o?X-Tos-Signature=SIMSIG");
            }
            Fault::Slow => tokio::time::sleep(sim.options.faults.slow).await,
            Fault::Truncated | Fault::Reset => {}
        }
    }
    let body = match answer(&sim, &pairs, n) {
        Ok(body) => body.into_bytes(),
        Err(resp) => return resp,
    };
    match fault {
        Some(Fault::Truncated) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body[..body.len() / 2].to_vec())
                .into_response()
        }
        Some(Fault::Reset) => {
            let half = bytes::Bytes::from(body[..body.len() / 2].to_vec());
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("simulated connection reset"))];
            let mut resp = Body::from_stream(futures::stream::iter(chunks)).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().expect("a valid header"));
            resp
        }
        _ => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The JSON answer to a well-formed, authorised request, or an API error response.
#[allow(
    clippy::result_large_err,
    reason = "the simulator's error path is a ready response, built once per refused request"
)]
fn answer(sim: &Simulator, pairs: &[(String, String)], n: u64) -> Result<String, Response> {
    let int = |name: &str, default: Option<i64>| -> Result<i64, Response> {
        match param(pairs, name) {
            None | Some("") => default.ok_or_else(|| api(1001, &format!("lack param: {name}"))),
            Some(v) => v.trim().parse::<i64>().map_err(|_| api(1002, &format!("bad param: {name}"))),
        }
    };
    let (start, end) = (int("start_time", None)?, int("end_time", None)?);
    if sim.options.broken.is_some_and(|(from, to)| from <= start && start < to) {
        return Err(api(1001, "lack param: region"));
    }
    let offset = int("start_num", Some(0))?.max(0) as u64;
    let count = (int("count", Some(50))?.max(1) as u64).min(sim.options.max_count);
    if offset + count > sim.options.max_offset && offset > 0 {
        sim.stats.deep_refused.fetch_add(1, Ordering::SeqCst);
        return Err(api(1002, "bad param: start_num + count exceeds 10000"));
    }
    let now = sim.now();
    let status = param(pairs, "status").filter(|s| !s.is_empty());
    let mut tasks = sim.listing(start, end, now, true);
    tasks.retain(|&i| status.is_none_or(|s| sim.tasks[i].status_at(now) == s));
    let total = tasks.len() as u64 + sim.phantoms(start, end, now);
    if total == 0 || offset >= total {
        // The real service answers "empty result" (1004) sometimes and an empty list others.
        return Err(if n.is_multiple_of(2) { api(1004, "empty result") } else { empty(total) });
    }
    // Newest first, as list endpoints usually sort; ties broken by a key that, when the
    // order is unstable, changes every few requests.
    let epoch = if sim.options.unstable_order { n / 5 } else { 0 };
    tasks.sort_by_cached_key(|&i| (std::cmp::Reverse(sim.create_at(i, now)), mix(u64::from(sim.tasks[i].idx) ^ epoch)));
    let list: Vec<Arc<str>> =
        tasks.iter().skip(offset as usize).take(count as usize).map(|&i| sim.record_json(i, now)).collect();
    let total_value = if n % 7 == 3 { format!("\"{total}\"") } else { total.to_string() };
    let mut body = String::with_capacity(list.iter().map(|r| r.len() + 1).sum::<usize>() + 96);
    body.push_str(r#"{"code":0,"data":{"list":["#);
    for (k, record) in list.iter().enumerate() {
        if k > 0 {
            body.push(',');
        }
        body.push_str(record);
    }
    body.push_str(&format!(r#"],"num":{},"total":{total_value}}},"msg":"success"}}"#, list.len()));
    Ok(body)
}

fn empty(total: u64) -> Response {
    axum::Json(json!({ "code": 0, "msg": "success", "data": { "list": [], "num": 0, "total": total } })).into_response()
}

/// Recomputes the standard AK/SK signature of the request as received.
fn signature_ok(headers: &HeaderMap, pairs: &[(String, String)], ak: &str, sk: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some((got_ak, got_sig)) = header("authorization").and_then(sign::parse_authorization) else { return false };
    let Some(date) = header("date") else { return false };
    let wz: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-wz-"))
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let query: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let request = sign::Request {
        method: "GET",
        content_md5: "",
        content_type: "",
        date,
        headers: &wz,
        path: "/api/list_task",
        query: &query,
    };
    got_ak == ak && got_sig == sign::signature(sk, &sign::string_to_sign(crate::config::Variant::Standard, &request))
}

/// Binds `addr` (use `127.0.0.1:0` for a free port) and serves in a background task.
pub async fn spawn(
    sim: Arc<Simulator>,
    addr: &str,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve(listener, sim))))
}
