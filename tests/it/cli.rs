//! The binary as users and systemd see it: commands, exit codes, one-line errors, secrets.

use std::path::Path;
use std::process::Output;

use crate::common::*;
use tasksync::simulator::{FaultSpec, SimOptions};

fn tasksync(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = bin();
    cmd.args(args).env("TASKSYNC_LOG", "debug");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().expect("the binary runs")
}

async fn tasksync_async(args: Vec<String>, config: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tasksync(&args, Some(&config))
    })
    .await
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_every_command_of_the_contract() {
    let out = tasksync(&["--help"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["sync", "run", "status", "check", "simulate", "demo", "--config"] {
        assert!(text.contains(command), "--help lacks {command}:\n{text}");
    }
    // The man page's NAME and DESCRIPTION come from the same text.
    assert!(text.starts_with("Exports a transcoding service's list_task API"), "the about line leads --help:\n{text}");
    let sync = String::from_utf8_lossy(&tasksync(&["sync", "--help"], None).stdout).into_owned();
    assert!(sync.contains("--from") && sync.contains("--to"), "{sync}");
}

#[test]
fn a_bad_config_line_exits_2_with_one_sentence_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9", "page_size = \"many\"", "");
    let out = tasksync(&["sync", "--from", "2021-10-01", "--to", "2021-10-02"], Some(&path));
    assert_eq!(out.status.code(), Some(2));
    let line = last_stderr_line(&out);
    assert!(
        line.starts_with("tasksync: error: config file")
            && line.contains("page_size")
            && line.contains("tasksync.toml"),
        "{line}"
    );
    assert_eq!(stderr(&out).lines().count(), 1, "exactly one line: {}", stderr(&out));
}

#[test]
fn sync_and_run_without_sync_start_are_config_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9", "", "");
    for args in [&["sync"][..], &["run"][..]] {
        let out = tasksync(args, Some(&path));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = last_stderr_line(&out);
        assert!(line.contains("sync.start") && line.contains("tasksync.toml"), "{line}");
    }
    assert!(!state_db(dir.path()).exists(), "nothing was started");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = tasksync(
        &["sync", "--from", "2021-10-01", "--to", "2021-10-02"],
        Some(Path::new("/nonexistent/tasksync.toml")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(last_stderr_line(&out).contains("/nonexistent/tasksync.toml"), "{}", last_stderr_line(&out));
}

#[test]
fn a_backwards_or_malformed_range_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_file(dir.path(), "http://127.0.0.1:9", "", "");
    let out = tasksync(&["sync", "--from", "2021-10-02", "--to", "2021-10-01"], Some(&path));
    assert_eq!(out.status.code(), Some(2));
    assert!(last_stderr_line(&out).contains("--from"), "{}", last_stderr_line(&out));
    let out = tasksync(&["sync", "--from", "last tuesday", "--to", "2021-10-01"], Some(&path));
    assert_eq!(out.status.code(), Some(2));
    assert!(last_stderr_line(&out).contains("last tuesday"), "{}", last_stderr_line(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_from_to_backfills_exactly_and_logs_no_secret() {
    let now = D0 + 2 * DAY;
    let options = SimOptions {
        keys: Some((AK.into(), SK.into())),
        faults: FaultSpec::quick(100),
        unstable_order: true,
        ..SimOptions::default()
    };
    let mut data = spec(9, 6_000, 2);
    data.bad_per_million = 3_000; // rejects, whose raw records carry presigned URLs
    let world = Scenario::start(data, options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let path = config_file(dir.path(), &sim.url, "", "");
    let args = ["sync", "--from", "2021-10-01", "--to", "2021-10-03"].map(String::from).to_vec();
    let out = tasksync_async(args.clone(), path.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let truth = sim.sim.truth(D0, D0 + 2 * DAY, false).len();
    assert!(stdout.contains("Backfill done: windows=2") && stdout.contains(&format!("tasks={truth} ")), "{stdout}");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(D0, D0 + 2 * DAY, false));

    // Debug logs, stdout, the data, the rejects and the state database carry neither the
    // secret, nor a signature, nor a presigned query.
    let mut everything = format!("{stdout}{}", stderr(&out));
    let rows = stored(&dir.path().join("out"));
    for (_, row) in &rows {
        everything.push_str(&format!("{:?}", row.task));
    }
    // The simulator puts presigned URLs in error messages and unknown fields too: they are
    // there, without their signatures.
    assert!(rows.iter().any(|(_, r)| r.task.err_message.as_deref().is_some_and(|m| m.contains(": https://"))));
    assert!(rows.iter().any(|(_, r)| r.task.extra.as_deref().is_some_and(|m| m.contains(r#""source":"https://"#))));
    let mut files = vec![dir.path().to_path_buf()];
    let mut rejects = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_none_or(|e| e != "toml") {
            let bytes = std::fs::read(&p).unwrap();
            if p.to_string_lossy().contains("_rejects") {
                rejects += String::from_utf8_lossy(&bytes).lines().count();
            }
            everything.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert_eq!(rejects, sim.sim.bad_records(D0, D0 + 2 * DAY), "the rejects file was scanned too");
    // Every secret part of the simulator's other URL forms (TOS, COS, CDN tokens, escaped
    // queries, userinfo, nested presigned URLs, the API's own error messages) holds SIMSIG.
    assert!(everything.contains("media.example.com/in/v.mp4"), "the other URL forms were in the run");
    for needle in [SK, "Signature=", "AWSAccessKeyId", "Expires=", "Visionular AccessKeyId", "SIMSIG"] {
        assert!(!everything.contains(needle), "the run leaked {needle:?}");
    }
    assert!(stderr(&out).contains("Retrying a page"), "debug logging was on and retries happened");

    // Run again: everything is done already, so the command succeeds and writes nothing.
    let again = tasksync_async(args, path).await;
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("windows=0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_fails_with_one_line_naming_the_window() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of the loopback.
    let path = config_file(dir.path(), "http://127.0.0.1:9", "max_retries = 1", "");
    let out =
        tasksync_async(["sync", "--from", "2021-10-01", "--to", "2021-10-02"].map(String::from).to_vec(), path).await;
    assert_eq!(out.status.code(), Some(1));
    let line = last_stderr_line(&out);
    assert!(line.contains("gave up on window [2021-10-01T00:00:00Z") && line.contains("could not connect"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_leaves_a_window_behind_exits_3_with_one_line_naming_it() {
    let now = D0 + 3 * DAY;
    let options = SimOptions { broken: Some((D0 + DAY, D0 + 2 * DAY)), ..SimOptions::default() };
    let world = Scenario::start(spec(45, 3_000, 3), options, now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let path = config_file(dir.path(), &sim.url, "", "");
    let args = ["sync", "--from", "2021-10-01", "--to", "2021-10-04"].map(String::from).to_vec();
    let out = tasksync_async(args.clone(), path.clone()).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = last_stderr_line(&out);
    assert!(
        line.starts_with("tasksync: error: the backfill finished but left 1 range(s) for the next run: [2021-10-02T00:00:00Z, 2021-10-03T00:00:00Z) (")
            && line.contains("code 1001")
            && line.ends_with("run the same command again later (`tasksync status` shows why)"),
        "{line}"
    );
    let mut expected = sim.sim.truth(D0, D0 + DAY, false);
    expected.extend(sim.sim.truth(D0 + 2 * DAY, D0 + 3 * DAY, false));
    assert_exact(&dir.path().join("out"), &expected);

    let status = tasksync_async(vec!["status".into()], path.clone()).await;
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.contains("left:       backfill:")
            && text.contains("[2021-10-02T00:00:00Z, 2021-10-03T00:00:00Z) tried 1x"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_local_time_zone_is_refused_with_exit_2_naming_the_key() {
    let now = D0 + DAY;
    let world = Scenario::start(spec(46, 500, 1), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let args = ["sync", "--from", "2021-10-01", "--to", "2021-10-02"].map(String::from).to_vec();
    let path = config_file(dir.path(), &sim.url, "local_time_zone = \"+08:00\"", "");
    assert_eq!(tasksync_async(args.clone(), path).await.status.code(), Some(0));
    let stamps = file_stamps(&dir.path().join("out"));

    let path = config_file(dir.path(), &sim.url, "local_time_zone = \"+00:00\"", "");
    let out = tasksync_async(args, path).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = last_stderr_line(&out);
    assert!(
        line.contains("`api.local_time_zone` is +00:00 in the config")
            && line.contains("recorded +08:00")
            && line.contains("Changing api.local_time_zone"),
        "{line}"
    );
    assert_eq!(file_stamps(&dir.path().join("out")), stamps, "nothing was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_synced_data_and_names_a_duplicate_planted_on_purpose() {
    let now = D0 + 2 * DAY;
    let world = Scenario::start(spec(48, 2_000, 2), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let path = config_file(dir.path(), &sim.url, "", "");
    let args = ["sync", "--from", "2021-10-01", "--to", "2021-10-03"].map(String::from).to_vec();
    assert_eq!(tasksync_async(args, path.clone()).await.status.code(), Some(0));
    let state = std::fs::read(state_db(dir.path())).unwrap();

    let ok = tasksync_async(vec!["verify".into()], path.clone()).await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    let rows = sim.sim.truth(D0, D0 + 2 * DAY, false).len();
    assert!(text.contains(&format!("read 2 partition files, {rows} rows")) && text.contains("ok: "), "{text}");
    assert_eq!(std::fs::read(state_db(dir.path())).unwrap(), state, "verify changes no byte of the state database");

    // A copy of day one planted as day three: every task of it is there twice.
    let tasks = dir.path().join("out/tasks");
    std::fs::create_dir(tasks.join("create_date=2021-10-03")).unwrap();
    std::fs::copy(
        tasks.join("create_date=2021-10-01/part-0.parquet"),
        tasks.join("create_date=2021-10-03/part-0.parquet"),
    )
    .unwrap();
    let bad = tasksync_async(vec!["verify".into()], path).await;
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(
        text.contains("problem: ") && text.contains("was created on 2021-10-01 (UTC), not in this partition"),
        "{text}"
    );
    assert!(text.contains("appears 2 times: in "), "{text}");
    assert!(
        last_stderr_line(&bad).starts_with("tasksync: error: verify found ")
            && last_stderr_line(&bad).contains("problem(s)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_verify_need_no_secret_take_no_lock_and_change_no_byte() {
    let now = D0 + DAY;
    let world = Scenario::start(spec(49, 500, 1), SimOptions::default(), now).await;
    let (sim, dir) = (&world.sim, &world.dir);
    let path = config_file(dir.path(), &sim.url, "", "");
    let args = ["sync", "--from", "2021-10-01", "--to", "2021-10-02"].map(String::from).to_vec();
    assert_eq!(tasksync_async(args.clone(), path.clone()).await.status.code(), Some(0));

    // The secret's file exists only inside the running service: an operator's shell has
    // none. Status and verify work; a sync says which key to fix.
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("secret_key_env = \"TEST_SK\"", "secret_key_file = \"/run/credentials/tasksync.service/secret_key\"");
    std::fs::write(&path, text).unwrap();
    let db = state_db(dir.path());
    let writer = tasksync::sink::store::staging::StagingArea::open(&dir.path().join("out")).unwrap(); // a writer runs
    let lock = writer.dir.with_extension("lock");
    let before = (
        std::fs::read(&db).unwrap(),
        std::fs::read(&lock).unwrap(),
        std::fs::metadata(&lock).unwrap().modified().unwrap(),
    );
    for command in ["status", "verify"] {
        let out = tasksync_async(vec![command.into()], path.clone()).await;
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
    }
    let status = tasksync_async(vec!["status".into(), "--json".into()], path.clone()).await;
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((json["writer_running"].clone(), json["writers"].clone()), (true.into(), 1.into()), "{json}");
    let after = (
        std::fs::read(&db).unwrap(),
        std::fs::read(&lock).unwrap(),
        std::fs::metadata(&lock).unwrap().modified().unwrap(),
    );
    assert!(before == after, "no byte of the state database or the lock file changed");
    drop(writer);

    let sync = tasksync_async(args, path.clone()).await;
    assert_eq!(sync.status.code(), Some(2));
    assert!(last_stderr_line(&sync).contains("api.secret_key_file"), "{}", last_stderr_line(&sync));

    // No state database yet: a clear message, and none is created.
    let empty = tempfile::tempdir().unwrap();
    let path = config_file(empty.path(), &sim.url, "", "");
    let out = tasksync_async(vec!["status".into()], path).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no sync has run"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!state_db(empty.path()).exists(), "status created no state database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_certificates_an_https_api_is_one_sentence_naming_the_path_and_an_http_api_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let run = |url: &str, config_dir: &Path| {
        let path = config_file(config_dir, url, "max_retries = 1", "");
        let mut cmd = bin();
        // Where rustls looks for CA certificates: nowhere that has any.
        cmd.env("SSL_CERT_FILE", "/nonexistent/ca-certificates.crt").env("SSL_CERT_DIR", "/nonexistent");
        cmd.arg("--config").arg(path).args(["sync", "--from", "2021-10-01", "--to", "2021-10-02"]);
        cmd.output().unwrap()
    };
    let https = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || run("https://127.0.0.1:9", &d)
    })
    .await
    .unwrap();
    assert_eq!(https.status.code(), Some(1), "{}", stderr(&https));
    let line = last_stderr_line(&https);
    assert!(
        line.contains("no CA certificate could be loaded from SSL_CERT_FILE=/nonexistent/ca-certificates.crt")
            && line.contains("install the ca-certificates package")
            && !line.contains("builder error"),
        "{line}"
    );

    let now = D0 + DAY;
    let sim = start_sim(spec(47, 300, 1), SimOptions::default(), now).await;
    let plain = tempfile::tempdir().unwrap();
    let (url, d) = (sim.url.clone(), plain.path().to_path_buf());
    let http = tokio::task::spawn_blocking(move || run(&url, &d)).await.unwrap();
    assert_eq!(http.status.code(), Some(0), "an http:// API needs no CA certificate: {}", stderr(&http));
    assert_exact(&plain.path().join("out"), &sim.sim.truth(D0, D0 + DAY, false));
}

#[test]
fn the_version_names_the_git_commit_it_was_built_from() {
    let out = tasksync(&["--version"], None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.trim(), format!("tasksync {} (commit {})", env!("CARGO_PKG_VERSION"), env!("TASKSYNC_COMMIT")));
    let commit = env!("TASKSYNC_COMMIT");
    assert!(commit != "unknown" && commit.len() >= 12, "built from a git checkout: {commit}");
}
