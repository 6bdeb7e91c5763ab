//! The data set on S3-compatible object storage, against a real S3 server on loopback
//! (moto's, which `.ci/run` installs): exact backfills, one conditional PUT per changed
//! partition, racing writers, a PUT that breaks, kill -9, `check` and `verify`, and the
//! data read back the way analysts read it (pyarrow's S3 filesystem).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use crate::s3_server::*;
use tasksync::plan::Window;
use tasksync::simulator::SimOptions;
use tasksync::sync::{run_backfill, run_incremental};

/// Every key is a partition file or a rejects file: nothing temporary, nothing stray.
fn only_final_keys(keys: &[(String, String)]) {
    for (key, _) in keys {
        let rel = key.strip_prefix(&format!("{PREFIX}/")).unwrap_or(key);
        let partition = (rel.starts_with("tasks/create_date=") || rel.starts_with("task_history/create_date="))
            && rel.ends_with("/part-0.parquet");
        assert!(partition || rel.starts_with("_rejects/"), "stray key {key}");
    }
}

/// S3 behind a proxy that can break or refuse PUTs, and a simulator of one day of 3,000
/// tasks (dataset `seed`) an hour after the day ended.
struct Proxied {
    /// The S3 server.
    moto: Moto,
    /// The proxy in front of it, which the tests configure.
    proxy: Proxy,
    /// The simulator's now.
    now: i64,
    /// The simulator.
    sim: Sim,
    /// Where the state database and mirrors go.
    dir: tempfile::TempDir,
}

impl Proxied {
    async fn start(seed: u64) -> Proxied {
        let moto = Moto::start();
        let proxy = Proxy::start(moto.port).await;
        let now = D0 + DAY + 3600;
        let sim = start_sim(spec(seed, 3_000, 1), SimOptions::default(), now).await;
        Proxied { moto, proxy, now, sim, dir: tempfile::tempdir().unwrap() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_to_s3_is_exact_verified_and_reads_with_pyarrow() {
    let moto = Moto::start();
    let now = D0 + 4 * DAY + 3600;
    let world = Scenario::start(spec(71, 6_000, 4), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + 4 * DAY);
    let totals = run_backfill(s3_config(&sim.url, dir.path(), &moto.endpoint()), fixed(now), range).await.unwrap();
    assert_eq!((totals.windows, totals.counts.files_written), (4, 4));

    let keys = keys(&moto.endpoint()).await;
    assert_eq!(keys.len(), 8, "a tasks and a task_history object per day: {keys:?}");
    only_final_keys(&keys);
    let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
    let truth = sim.sim.truth(range.start, range.end, false);
    assert_exact(&mirror, &truth);
    assert!(!dir.path().join("state/s3-work/tasks").exists(), "nothing is written to a local tasks/");

    // `tasksync verify` on the bucket.
    let text = s3_config_text(&sim.url, dir.path(), &moto.endpoint(), "", "");
    std::fs::write(dir.path().join("s3.toml"), text).unwrap();
    let verify = bin().arg("--config").arg(dir.path().join("s3.toml")).arg("verify").output().unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(said.contains(&format!("read 4 partition files, {} rows", truth.len())) && said.contains("ok: "), "{said}");

    // The way analysts read it: pyarrow's S3 filesystem, hive partitioning.
    let script = format!(
        "import pyarrow.dataset as ds, pyarrow.fs as fs, pyarrow.compute as pc\n\
         s3 = fs.S3FileSystem(endpoint_override='127.0.0.1:{port}', scheme='http', access_key='k', secret_key='s', region='us-east-1')\n\
         t = ds.dataset('{BUCKET}/{PREFIX}/tasks', filesystem=s3, format='parquet', partitioning='hive').to_table()\n\
         print(t.num_rows, len(pc.unique(t['task_id'])), 'create_date' in t.column_names)\n",
        port = moto.port
    );
    let read = Command::new("python3").arg("-c").arg(script).output().unwrap();
    let said = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert_eq!(said.trim(), format!("{n} {n} True", n = truth.len()));

    // And DuckDB over S3 (httpfs from a pinned wheel, in the virtualenv .ci/run makes).
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/target/duckdb-s3/bin/python3");
    assert!(Path::new(python).exists(), "{python} is missing: .ci/run creates it (duckdb 1.4.4 + duckdb-ext-httpfs)");
    let read = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/read_s3_duckdb.py"))
        .arg(format!("127.0.0.1:{}", moto.port))
        .arg(format!("s3://{BUCKET}/{PREFIX}"))
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), format!("{n} {n} 2021-10-01", n = truth.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_pass_rewrites_exactly_the_objects_whose_rows_changed() {
    let moto = Moto::start();
    let now = D0 + 3 * DAY + 3 * 3600;
    let world = Scenario::start(spec(72, 6_000, 3), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let cfg = || with_sync(s3_config(&sim.url, dir.path(), &moto.endpoint()));
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    let before = keys(&moto.endpoint()).await;
    let rows_before = stored(&mirror(&moto.endpoint(), &dir.path().join("m1")).await);

    // Two hours later some tasks finished; the pass re-checks them and scans the lookback.
    sim.sim.set_now(now + 2 * 3600);
    run_incremental(cfg(), fixed(now + 2 * 3600), D0).await.unwrap();
    let after = keys(&moto.endpoint()).await;
    let rows_after = stored(&mirror(&moto.endpoint(), &dir.path().join("m2")).await);
    assert_exact(&dir.path().join("m2"), &sim.sim.truth(D0, now + 2 * 3600 - 120, false));

    let partition_of = |k: &str| k.split('/').find(|p| p.starts_with("create_date=")).unwrap().to_string();
    let rows_of = |rows: &[(String, tasksync::row::StoredRow)], date: &str| -> Vec<String> {
        rows.iter().filter(|(d, _)| format!("create_date={d}") == date).map(|(_, r)| format!("{:?}", r.task)).collect()
    };
    let mut rewritten = 0;
    for (key, etag) in &after {
        let date = partition_of(key);
        let old = before.iter().find(|(k, _)| k == key).map(|(_, e)| e.clone());
        let changed = rows_of(&rows_before, &date) != rows_of(&rows_after, &date);
        assert_eq!(old.as_ref() != Some(etag), changed, "{key}: rewritten exactly when its rows changed");
        rewritten += usize::from(changed);
    }
    assert!(
        rewritten >= 1 && rewritten < after.len(),
        "some partitions changed, not all ({rewritten} of {})",
        after.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_on_the_same_partitions_lose_nothing() {
    let moto = Moto::start();
    let now = D0 + 2 * DAY + 3600;
    let sim = start_sim(spec(73, 8_000, 2), SimOptions::default(), now).await;
    // Two hosts: their own state databases and work directories, one bucket prefix.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let range = Window::new(D0, D0 + 2 * DAY);
    let first = run_backfill(s3_config(&sim.url, a.path(), &moto.endpoint()), fixed(now), range);
    let second = run_backfill(s3_config(&sim.url, b.path(), &moto.endpoint()), fixed(now), range);
    let (ra, rb) = tokio::join!(first, second);
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.left_behind.is_empty() && rb.left_behind.is_empty(), "{ra:?} {rb:?}");
    let mirror = mirror(&moto.endpoint(), &a.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(range.start, range.end, false));
    only_final_keys(&keys(&moto.endpoint()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_overtaken_on_its_partition_merges_again_and_loses_nothing() {
    let moto = Moto::start();
    let now = D0 + DAY + 3600;
    let sim = start_sim(spec(75, 4_000, 1), SimOptions::default(), now).await;
    let (slow, fast) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let range = Window::new(D0, D0 + DAY);
    // The slow writer opens the day's partition (no object yet) and pages for about four
    // seconds; the fast one creates the object meanwhile, so the slow one's
    // `If-None-Match: *` PUT is refused and it merges again over the fast one's object.
    let text = s3_config_text(&sim.url, slow.path(), &moto.endpoint(), "", "")
        .replace("requests_per_second = 100000", "requests_per_second = 10");
    let slow_cfg = tasksync::config::Config::parse(&text, Path::new("slow.toml"), &|_| Some(SK.to_string())).unwrap();
    let slow_run = tokio::spawn(run_backfill(slow_cfg, fixed(now), range));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fast_run = run_backfill(s3_config(&sim.url, fast.path(), &moto.endpoint()), fixed(now), range).await.unwrap();
    let slow_run = slow_run.await.unwrap().unwrap();
    assert_eq!(fast_run.conflicts, 0);
    assert!(slow_run.conflicts >= 1, "the slow writer was overtaken: {slow_run:?}");
    assert!(slow_run.left_behind.is_empty());
    let mirror = mirror(&moto.endpoint(), &slow.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(range.start, range.end, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_broken_mid_way_leaves_the_old_object_and_the_checkpoint() {
    let Proxied { moto, proxy, now, sim, dir } = Proxied::start(74).await;
    let cfg = || with_sync(s3_config(&sim.url, dir.path(), &proxy.endpoint()));
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    let before = keys(&moto.endpoint()).await;
    let cursor = || tasksync::state::State::open(&state_db(dir.path())).unwrap().cursor("incremental").unwrap();
    let cursor_before = cursor();

    sim.sim.set_now(now + 3 * 3600);
    proxy.fail_puts.store(true, Ordering::SeqCst);
    let failed = run_incremental(cfg(), fixed(now + 3 * 3600), D0).await;
    let err = failed.expect_err("the pass fails when every PUT breaks").to_string();
    assert!(err.contains(&format!("s3://{BUCKET}/{PREFIX}/tasks/create_date=")), "names the object: {err}");
    assert_eq!(keys(&moto.endpoint()).await, before, "the old objects stand, unchanged");
    assert_eq!(cursor(), cursor_before, "the checkpoint did not move");

    proxy.fail_puts.store(false, Ordering::SeqCst);
    run_incremental(cfg(), fixed(now + 3 * 3600), D0).await.unwrap();
    let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(D0, now + 3 * 3600 - 120, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_on_the_history_object_alone_merges_again_and_both_files_end_exact() {
    let Proxied { moto, proxy, now, sim, dir } = Proxied::start(77).await;
    let cfg = || with_sync(s3_config(&sim.url, dir.path(), &proxy.endpoint()));
    run_incremental(cfg(), fixed(now), D0).await.unwrap();
    let later = now + 3 * 3600;
    sim.sim.set_now(later);
    // The tasks object's PUT goes through; the history's is refused once, as if another
    // writer had replaced it since this window fetched it.
    proxy.refuse_history_puts.store(1, Ordering::SeqCst);
    let totals = run_incremental(cfg(), fixed(later), D0).await.unwrap();
    assert_eq!(proxy.refuse_history_puts.load(Ordering::SeqCst), 0, "a history PUT was refused");
    assert!(totals.conflicts >= 1 && totals.left_behind.is_empty(), "{totals:?}");
    let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(D0, later - 120, false));
    assert!(history_rows(&mirror).len() > stored(&mirror).len(), "the second pass's changes are versions");
    only_final_keys(&keys(&moto.endpoint()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_beside_the_service_stopped_between_its_two_puts_is_caught_up_by_the_services_next_pass() {
    let Proxied { moto, proxy, now, sim, dir } = Proxied::start(78).await;
    let cfg = || with_sync(s3_config(&sim.url, dir.path(), &proxy.endpoint()));
    // The service: one process, so it remembers each day's history as current.
    let mut service = tasksync::sync::Context::open(cfg(), fixed(now)).unwrap();
    let stop = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    tasksync::sync::run_pass(&service, tasksync::sync::PassKind::Incremental { start: D0 }, stop()).await.unwrap();
    // A backfill beside it writes the changed tasks objects, and never its histories.
    let later = now + 3 * 3600;
    sim.sim.set_now(later);
    proxy.refuse_history_puts.store(u32::MAX, Ordering::SeqCst);
    let _ = run_backfill(cfg(), fixed(later), Window::new(D0, D0 + DAY)).await;
    proxy.refuse_history_puts.store(0, Ordering::SeqCst);
    let lagging = mirror(&moto.endpoint(), &dir.path().join("lagging")).await;
    let lag = tasksync::verify::verify(&lagging);
    assert!(lag.notes.iter().any(|n| n.contains("it lags")), "the backfill left the history behind: {:?}", lag.notes);
    // The service's next pass finds those days quiet, yet sees that their tasks objects
    // changed since, and catches their histories up.
    service.clock = fixed(later);
    tasksync::sync::run_pass(&service, tasksync::sync::PassKind::Incremental { start: D0 }, stop()).await.unwrap();
    let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(D0, later - 120, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_a_rerun_is_exact_with_no_stray_keys() {
    let moto = Moto::start();
    let (sim, start, now) = live_sim(20_000, 6).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s3.toml"), s3_config_text(&sim.url, dir.path(), &moto.endpoint(), "", "")).unwrap();
    let args = ["sync".to_string(), "--from".into(), start.to_string(), "--to".into(), now.to_string()];
    for delay_ms in [400u64, 900, 1500] {
        let mut child = bin().arg("--config").arg(dir.path().join("s3.toml")).args(&args).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let last = bin().arg("--config").arg(dir.path().join("s3.toml")).args(&args).output().unwrap();
    assert_eq!(last.status.code(), Some(0), "{}", String::from_utf8_lossy(&last.stderr));
    only_final_keys(&keys(&moto.endpoint()).await);
    let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(start, now, false));
    let verify = bin().arg("--config").arg(dir.path().join("s3.toml")).arg("verify").output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_the_store_and_names_the_key_to_fix() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
    let (sim, _, _) = live_sim(100, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let check = |endpoint: &str, extra: &str, bucket: &str| {
        let text = s3_config_text(&sim.url, dir.path(), endpoint, "", extra).replace(BUCKET, bucket);
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        let out = bin().arg("--config").arg(dir.path().join("c.toml")).arg("check").output().unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (code, said) = check(&moto.endpoint(), "", BUCKET);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("probe written and deleted, conditional writes refused as they must be"), "{said}");
    assert!(keys(&moto.endpoint()).await.is_empty(), "the probe is gone");

    // A store that ignores If-None-Match (the proxy strips it) with conditional_put = "etag".
    proxy.strip_conditions.store(true, Ordering::SeqCst);
    let (code, said) = check(&proxy.endpoint(), "", BUCKET);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("ignored If-None-Match") && said.contains("conditional_put = \"none\""), "{said}");
    let (code, said) = check(&proxy.endpoint(), "conditional_put = \"none\"", BUCKET);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("one writer per prefix"), "{said}");

    let (code, said) = check(&moto.endpoint(), "", "no-such-bucket");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("the bucket does not exist: check storage.output_dir"), "{said}");
    let dead = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let (code, said) = check(&dead, "", BUCKET);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("cannot be reached: check storage.s3.endpoint"), "{said}");
    assert!(!said.contains("moto-accepts-any-secret"), "the secret never shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_conditional_on_a_stale_etag_is_a_conflict_and_changes_nothing() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = s3_config("http://unused", dir.path(), &moto.endpoint());
    let remote = tasksync::sink::store::remote::Remote::open(cfg.storage.s3.as_ref().unwrap()).unwrap();
    let file = dir.path().join("f");
    let rel = "tasks/create_date=2021-10-01/part-0.parquet";
    std::fs::write(&file, b"version 1").unwrap();
    remote.upload(rel, &file, None).await.unwrap();
    let first = remote.upload(rel, &file, None).await.unwrap_err().to_string();
    let etag = remote.fetch(rel, &dir.path().join("got")).await.unwrap().expect("the object exists");
    std::fs::write(&file, b"version 2 by another writer").unwrap();
    remote.upload(rel, &file, Some(&etag)).await.unwrap();
    std::fs::write(&file, b"version 2 by this writer").unwrap();
    let second = remote.upload(rel, &file, Some(&etag)).await.unwrap_err().to_string();
    assert!(first.contains("another writer replaced s3://tasks-bucket/exports/vod/tasks/"), "{first}");
    assert!(second.contains("another writer replaced"), "{second}");
    let key = format!("{PREFIX}/{rel}");
    let got = object_store::ObjectStoreExt::get(&*store(&moto.endpoint()), &key.as_str().into()).await.unwrap();
    let bytes = got.bytes().await.unwrap();
    assert_eq!(&bytes[..], b"version 2 by another writer", "the other writer's version stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_state_database_on_one_prefix_does_not_make_newer_observations_lose() {
    // Two hosts, each with its own state.db, write one S3 prefix in turn, as tasks move on.
    let moto = Moto::start();
    let t1 = D0 + 2 * DAY + 3600;
    let sim = start_sim(spec(76, 4_000, 3), SimOptions::default(), t1).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let range = Window::new(D0, D0 + 3 * DAY);
    run_backfill(s3_config(&sim.url, a.path(), &moto.endpoint()), fixed(t1), range).await.unwrap();
    for (i, dir) in [b.path(), a.path()].into_iter().enumerate() {
        let now = t1 + (i as i64 + 1) * 6 * 3600;
        sim.sim.set_now(now);
        // A fresh job each time (another range), so that every day is listed again.
        let again = Window::new(D0 - (i as i64 + 1) * DAY, D0 + 3 * DAY);
        run_backfill(s3_config(&sim.url, dir, &moto.endpoint()), fixed(now), again).await.unwrap();
    }
    // Host A's own sequence is far below what host B wrote; its newer observations still won.
    let mirror = mirror(&moto.endpoint(), &a.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(range.start, range.end, false));
}

/// With as few blocking threads as a busy service may have free, object-store I/O still
/// runs: an endpoint given by name needs a blocking thread to resolve it for each new
/// connection, which a request waiting inside a blocking thread would never get.
#[test]
fn a_backfill_to_an_endpoint_given_by_name_finishes_with_one_blocking_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let moto = Moto::start();
        let now = D0 + 3 * DAY + 3600;
        let world = Scenario::start(spec(72, 3_000, 3), SimOptions::default(), now).await;
        let (sim, dir) = (&world.sim, &world.dir);
        let range = Window::new(D0, D0 + 3 * DAY);
        let by_name = format!("http://localhost:{}", moto.port);
        let backfill = run_backfill(s3_config(&sim.url, dir.path(), &by_name), fixed(now), range);
        let totals = tokio::time::timeout(Duration::from_secs(120), backfill).await.expect("no stall").unwrap();
        assert_eq!(totals.counts.files_written, 3);
        let mirror = mirror(&moto.endpoint(), &dir.path().join("mirror")).await;
        assert_exact(&mirror, &sim.sim.truth(range.start, range.end, false));
    });
}

/// What `verify` on a bucket leaves in `$TMPDIR` while it runs and after: watched from
/// outside, a millisecond apart.
struct Watched {
    /// The modes of the scratch directories seen.
    modes: Vec<u32>,
    /// The most files seen in one at once.
    most_files: usize,
    /// Their names.
    names: Vec<String>,
    /// The verify process's pid, which a predictable name would be made of.
    pid: u32,
}

fn watch_verify(config: &Path, tmp: &Path, sigterm: bool) -> (std::process::Output, Watched) {
    use std::os::unix::fs::PermissionsExt;
    let mut child = bin()
        .arg("--config")
        .arg(config)
        .arg("verify")
        .env("TMPDIR", tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Watched { modes: Vec::new(), most_files: 0, names: Vec::new(), pid: child.id() };
    while child.try_wait().unwrap().is_none() {
        for dir in std::fs::read_dir(tmp).unwrap().flatten() {
            let Ok(meta) = dir.metadata() else { continue };
            seen.modes.push(meta.permissions().mode() & 0o777);
            seen.names.push(dir.file_name().to_string_lossy().into_owned());
            let files = walk_files(&dir.path());
            seen.most_files = seen.most_files.max(files);
            if sigterm && files > 0 {
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (child.wait_with_output().unwrap(), seen)
}

fn walk_files(dir: &Path) -> usize {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries.map(|e| if e.path().is_dir() { walk_files(&e.path()) } else { 1 }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_a_bucket_copies_one_object_at_a_time_into_a_private_directory_it_removes_even_on_sigterm() {
    let moto = Moto::start();
    let now = D0 + 12 * DAY + 3600;
    let world = Scenario::start(spec(73, 3_000, 12), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let range = Window::new(D0, D0 + 12 * DAY);
    run_backfill(s3_config(&sim.url, dir.path(), &moto.endpoint()), fixed(now), range).await.unwrap();
    std::fs::write(dir.path().join("s3.toml"), s3_config_text(&sim.url, dir.path(), &moto.endpoint(), "", "")).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    let (config, t) = (dir.path().join("s3.toml"), tmp.clone());
    let (out, seen) = tokio::task::spawn_blocking(move || watch_verify(&config, &t, false)).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("read 12 partition files"));
    assert!(!seen.modes.is_empty(), "the scratch directory was seen");
    assert!(
        seen.modes.iter().all(|m| *m == 0o700),
        "private: {:?}",
        seen.modes.iter().map(|m| format!("{m:o}")).collect::<Vec<_>>()
    );
    assert!(seen.most_files <= 2, "one day at a time (its tasks and task_history objects), not {}", seen.most_files);
    let predictable = format!("tasksync-verify-{}", seen.pid);
    assert!(seen.names.iter().all(|n| n.starts_with("tasksync-verify-") && *n != predictable), "{:?}", seen.names);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "removed on exit");

    let (config, t) = (dir.path().join("s3.toml"), tmp.clone());
    let (out, seen) = tokio::task::spawn_blocking(move || watch_verify(&config, &t, true)).await.unwrap();
    assert!(seen.most_files >= 1, "the signal came while a copy was there");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped by SIGTERM"));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "removed on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_plain_puts_a_second_work_directory_on_one_prefix_is_refused_with_a_sentence() {
    let moto = Moto::start();
    let now = D0 + 2 * DAY + 3600;
    let sim = start_sim(spec(74, 2_000, 2), SimOptions::default(), now).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = |dir: &Path| {
        let text = s3_config_text(&sim.url, dir, &moto.endpoint(), "", "conditional_put = \"none\"");
        tasksync::config::Config::parse(&text, Path::new("s3.toml"), &|_| Some(SK.to_string())).unwrap()
    };
    let range = Window::new(D0, D0 + 2 * DAY);
    run_backfill(plain(a.path()), fixed(now), range).await.expect("the first work directory claims the prefix");
    let refused = run_backfill(plain(b.path()), fixed(now), range).await.unwrap_err().to_string();
    let first = std::fs::canonicalize(a.path()).unwrap().join("state/s3-work");
    assert!(
        refused.contains("one work directory writes a prefix")
            && refused.contains(&first.display().to_string())
            && refused.contains(&format!("delete s3://{BUCKET}/{PREFIX}/_writer.json")),
        "{refused}"
    );
    let again = run_backfill(plain(a.path()), fixed(now + 60), range).await;
    assert!(again.is_ok(), "the claim's own writer goes on: {again:?}");
    let mirror = mirror(&moto.endpoint(), &a.path().join("mirror")).await;
    assert_exact(&mirror, &sim.sim.truth(range.start, range.end, false));
}
