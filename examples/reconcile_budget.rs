//! What a reconciliation costs: 100k tasks over 30 days are synced, then the source's past
//! changes over five days (nothing, 0.1 % listed late, 0.1 % deleted) and one
//! reconciliation runs. Prints
//! its requests against the budget `days + 4 x log2(day_tasks / page_size) x ranges +
//! pages`, and whether the data set then matches the source. Request counts do not depend
//! on the machine: they are the figures BENCHMARKS.md quotes.
//! Usage: cargo run --release --example reconcile_budget [TASKS]

use std::sync::Arc;

use tasksync::config::Config;
use tasksync::simulator::dataset::DatasetSpec;
use tasksync::simulator::{PastSpec, SimOptions, Simulator};
use tasksync::sync::run_incremental;

const D0: i64 = 1_633_046_400; // 2021-10-01
const DAY: i64 = 86_400;

fn config(url: &str, dir: &std::path::Path) -> Config {
    let text = format!(
        "[api]\nbase_url = \"{url}\"\nauth = \"none\"\npage_size = 50\nconcurrency = 4\nrequests_per_second = 100000\n\
         [sync]\nstart = \"{D0}\"\nlookback = \"1h\"\nsettle = \"2m\"\nreconcile_window = \"40d\"\n\
         [storage]\noutput_dir = \"{0}/out\"\nstate_db = \"{0}/state.db\"\n",
        dir.display()
    );
    Config::parse(&text, std::path::Path::new("bench"), &|_| None).expect("a valid config")
}

async fn scenario(name: &str, tasks: u64, past: PastSpec) {
    let spec = DatasetSpec { seed: 5, tasks, start: D0, end: D0 + 30 * DAY, hot_hour: None, bad_per_million: 0 };
    let t0 = D0 + 30 * DAY;
    let past = PastSpec { since: t0, ..past };
    let sim = Simulator::new(&spec, SimOptions { past, ..SimOptions::default() }, t0);
    let (addr, server) = tasksync::simulator::spawn(sim.clone(), "127.0.0.1:0").await.expect("bind");
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("http://{addr}");
    // The first pass lists everything; the second, five days later (every late listing
    // has appeared, most deletions happened), reconciles.
    run_incremental(config(&url, dir.path()), Arc::new(move || t0), D0).await.expect("first pass");
    let t1 = t0 + 5 * DAY;
    sim.set_now(t1);
    let totals = run_incremental(config(&url, dir.path()), Arc::new(move || t1), D0).await.expect("second pass");
    server.abort();
    let r = totals.reconciled.expect("a reconciliation was due");
    let rows = tasksync::sink::format::reader::read_file;
    let mut live = 0usize;
    for entry in std::fs::read_dir(dir.path().join("out/tasks")).expect("partitions") {
        let file = entry.expect("an entry").path().join("part-0.parquet");
        live += rows(&file).expect("readable").iter().filter(|r| r.deleted_at.is_none()).count();
    }
    let truth = sim.truth(D0, t1 - 120, false).len();
    println!(
        "{name:<22} days={} matched={} differing_ranges={} relisted_days={} requests={} budget={} pages_relisted={} found: new={} deleted={} | live={live} truth={truth} {}",
        r.days,
        r.matched,
        r.differing,
        r.relisted,
        r.requests,
        r.budget,
        r.pages,
        r.new,
        r.deleted,
        if live == truth { "exact" } else { "DIFFERS (equal counts; the rotation finds it)" }
    );
}

#[tokio::main]
async fn main() {
    let tasks: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    scenario("nothing changed", tasks, PastSpec::default()).await;
    scenario("0.1 % listed late", tasks, PastSpec { late_per_100k: 100, ..PastSpec::default() }).await;
    scenario("0.1 % deleted", tasks, PastSpec { deleted_per_100k: 100, ..PastSpec::default() }).await;
}
