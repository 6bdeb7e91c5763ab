//! The floor for a backfill on this machine: fetches the same pages tasksync would (day
//! windows split into equal parts of at most 2,500 tasks, like the walker's leaves; page
//! size and concurrency as given) from an unsigned list_task endpoint and throws them away.
//! Only the first page of a window is parsed, for its total. Prints `pages=N bytes=N seconds=S`.
//! Usage: cargo run --release --example bare_download -- URL FROM TO [PAGE_SIZE] [CONCURRENCY]
use futures::StreamExt;
use tasksync::plan::Window;
use tasksync::source::paging::LEAF_TASKS;

/// Only `data.total` of a first page is read; serde skips the rest of the body.
#[derive(serde::Deserialize)]
struct Envelope {
    data: Option<Data>,
}

#[derive(serde::Deserialize)]
struct Data {
    total: serde_json::Value,
}

async fn get(client: &reqwest::Client, url: &str, w: (i64, i64), offset: u64, count: u64) -> (u64, usize) {
    let q = [
        ("start_time", w.0.to_string()),
        ("end_time", w.1.to_string()),
        ("start_num", offset.to_string()),
        ("count", count.to_string()),
    ];
    loop {
        if let Ok(r) = client.get(url).query(&q).send().await
            && let Ok(body) = r.bytes().await
        {
            if offset > 0 {
                return (0, body.len());
            }
            if let Ok(Envelope { data: Some(Data { total }) }) = serde_json::from_slice::<Envelope>(&body) {
                let total = total.as_u64().or_else(|| total.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
                return (total, body.len());
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = format!("{}/api/list_task", args[1]);
    let (from, to): (i64, i64) = (args[2].parse().unwrap(), args[3].parse().unwrap());
    let count: u64 = args.get(4).map_or(100, |s| s.parse().unwrap());
    let concurrency: usize = args.get(5).map_or(4, |s| s.parse().unwrap());
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    // Plan leaf windows exactly like the walker: split into equal parts while total > LEAF_TASKS.
    let mut queue: Vec<(i64, i64)> =
        (0..).map(|d| from + d * 86_400).take_while(|s| *s < to).map(|s| (s, (s + 86_400).min(to))).collect();
    let mut pages = Vec::new();
    let (mut requests, mut bytes) = (0u64, 0usize);
    while let Some(w) = queue.pop() {
        let (total, b) = get(&client, &url, w, 0, count).await;
        requests += 1;
        bytes += b;
        let parts =
            if total > LEAF_TASKS { Window::new(w.0, w.1).split_into(total.div_ceil(LEAF_TASKS)) } else { None };
        if let Some(parts) = parts {
            queue.extend(parts.into_iter().map(|p| (p.start, p.end)));
        } else {
            pages.extend((1..).map(|i| i * count).take_while(|o| *o < total).map(|o| (w, o)));
        }
    }
    let results: Vec<(u64, usize)> = futures::stream::iter(pages)
        .map(|(w, o)| {
            let c = &client;
            let u = &url;
            async move { get(c, u, w, o, count).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    requests += results.len() as u64;
    bytes += results.iter().map(|r| r.1).sum::<usize>();
    println!("pages={requests} bytes={bytes} seconds={:.2}", started.elapsed().as_secs_f64());
}
