use super::*;

const GOOD: &str = r#"
[api]
base_url = "https://transcode.example.com/"
page_size = 50
timeout = "30s"
concurrency = 4
requests_per_second = 10
auth = "visionular"
access_key_id = "CWIs00000000i3x0"
secret_key_env = "TS_SECRET"
local_time_zone = "+08:00"

[sync]
start = "2021-10-01"
settle = "2m"
lookback = "1h"
reopen_max_age = "3d"
schedule = "0 */5 * * * *"

[storage]
output_dir = "/var/lib/tasksync/parquet"
state_db = "/var/lib/tasksync/state.db"
keep_url_query = false
"#;

fn env(name: &str) -> Option<String> {
    (name == "TS_SECRET").then(|| "s3cr3t-s3cr3t-s3cr3t-s3cr3t-0000".to_string())
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/tasksync/tasksync.toml"), &env)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_contract_example_loads() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.api.base_url, "https://transcode.example.com");
    assert_eq!(c.api.timeout, Duration::from_secs(30));
    assert_eq!(c.sync.reopen_max_age, Duration::from_secs(3 * 86_400));
    assert_eq!(c.sync.start, Some(1_633_046_400));
    assert_eq!(c.api.local_time_zone.local_minus_utc(), 8 * 3600);
    assert!(matches!(c.api.auth, Auth::Visionular { .. }));
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let c = parse(GOOD).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("redacted"));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let e = error(&GOOD.replace("page_size = 50", "page_sise = 50"));
    assert!(e.contains("page_sise") && e.contains("line 4") && e.contains("tasksync.toml"), "{e}");
}

#[test]
fn a_wrong_type_names_the_key() {
    let e = error(&GOOD.replace("page_size = 50", "page_size = \"fifty\""));
    assert!(e.contains("page_size") && e.contains("line 4"), "{e}");
}

#[test]
fn a_bad_duration_names_the_key_and_value() {
    let e = error(&GOOD.replace("settle = \"2m\"", "settle = \"two minutes\""));
    assert!(e.contains("sync.settle") && e.contains("two minutes"), "{e}");
}

#[test]
fn a_missing_required_key_is_named() {
    let e = error(&GOOD.replace("base_url = \"https://transcode.example.com/\"", ""));
    assert!(e.contains("base_url"), "{e}");
    let e = error(&GOOD.replace("access_key_id = \"CWIs00000000i3x0\"", ""));
    assert!(e.contains("api.access_key_id"), "{e}");
}

#[test]
fn out_of_range_and_malformed_values_are_refused_by_key() {
    for (from, to, key) in [
        ("page_size = 50", "page_size = 0", "api.page_size"),
        ("concurrency = 4", "concurrency = 0", "api.concurrency"),
        ("auth = \"visionular\"", "auth = \"basic\"", "api.auth"),
        ("local_time_zone = \"+08:00\"", "local_time_zone = \"Asia/Shanghai\"", "api.local_time_zone"),
        ("start = \"2021-10-01\"", "start = \"soon\"", "sync.start"),
        ("schedule = \"0 */5 * * * *\"", "schedule = \"*/5 *\"", "sync.schedule"),
        ("https://transcode.example.com/", "ftp://x", "api.base_url"),
        ("secret_key_env = \"TS_SECRET\"", "secret_key_env = \"UNSET_VAR\"", "api.secret_key_env"),
    ] {
        let e = error(&GOOD.replace(from, to));
        assert!(e.contains(key), "{key}: {e}");
    }
}

#[test]
fn an_unreadable_secret_file_is_named_without_its_content() {
    let e = error(&GOOD.replace("secret_key_env = \"TS_SECRET\"", "secret_key_file = \"/nonexistent/secret\""));
    assert!(e.contains("/nonexistent/secret") && e.contains("api.secret_key_file"), "{e}");
}

#[test]
fn a_secret_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sk");
    std::fs::write(&file, "abc\n").unwrap();
    let c =
        parse(&GOOD.replace("secret_key_env = \"TS_SECRET\"", &format!("secret_key_file = \"{}\"", file.display())))
            .unwrap();
    let Auth::Visionular { secret, .. } = c.api.auth else { panic!("visionular") };
    assert_eq!(secret.expose(), "abc");
}

#[test]
fn five_field_cron_gets_a_seconds_field() {
    assert_eq!(normalize_schedule("*/5 * * * *").unwrap(), "0 */5 * * * *");
    assert!(normalize_schedule("* *").is_err());
    assert!(normalize_schedule("0 */5 * * * *").is_ok());
    let e = normalize_schedule("0 */5 * * * Funday").unwrap_err();
    assert!(e.contains("Funday"), "{e}");
}

#[test]
fn a_minimal_config_takes_the_contract_defaults() {
    let c = parse("[api]\nbase_url = \"http://127.0.0.1:9\"\nauth = \"none\"\n").unwrap();
    assert_eq!((c.api.page_size, c.api.concurrency, c.api.requests_per_second), (50, 4, 10));
    assert_eq!(c.storage.state_db, PathBuf::from("/var/lib/tasksync/state.db"));
    assert_eq!(c.sync.schedule, "0 */5 * * * *");
    assert!(!c.storage.keep_url_query);
    assert!(c.storage.history, "task_history/ is kept unless turned off");
    let off = parse("[api]\nbase_url = \"http://127.0.0.1:9\"\nauth = \"none\"\n[storage]\nhistory = false\n").unwrap();
    assert!(!off.storage.history);
}

#[test]
fn the_shipped_example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/tasksync.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret_key"), "x").unwrap();
    // It reads the key as the units hand it over: from $CREDENTIALS_DIRECTORY.
    let creds = dir.path().display().to_string();
    let env = move |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
    let c = Config::parse(&text, Path::new("/etc/tasksync/tasksync.toml"), &env).unwrap();
    let Auth::Visionular { secret, .. } = &c.api.auth else { panic!("signed") };
    assert_eq!(secret.expose(), "x");
    assert_eq!(c.api.max_offset, 10_000);
    assert_eq!(c.api.page_size, 50);
}

#[test]
fn syntax_errors_duplicates_and_unknown_tables_are_named_by_line() {
    for (from, to, needles) in [
        ("page_size = 50", "page_size = ", &["line 4", "page_size"][..]),
        ("page_size = 50", "page_size = 50\npage_size = 60", &["line 5", "page_size", "duplicate"][..]),
        ("[sync]", "[synk]", &["synk"][..]),
        ("keep_url_query = false", "keep_url_query = \"no\"", &["keep_url_query"][..]),
        ("keep_url_query = false", "keep_url_query = false\nhistory = \"yes\"", &["history"][..]),
        ("concurrency = 4", "concurrency = -4", &["concurrency"][..]),
    ] {
        let e = error(&GOOD.replace(from, to));
        assert!(!e.contains('\n'), "one line: {e}");
        for needle in needles {
            assert!(e.contains(needle), "`{to}` -> {e}");
        }
    }
}

#[test]
fn a_relative_secret_key_file_is_a_credential_in_credentials_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret_key"), "s3cr3t\n").unwrap();
    let text = "[api]\nbase_url = \"https://x\"\naccess_key_id = \"AK\"\nsecret_key_file = \"secret_key\"\n";
    let creds = dir.path().display().to_string();
    let env = move |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| creds.clone());
    let cfg = Config::parse(text, Path::new("t.toml"), &env).unwrap();
    let Auth::Visionular { secret, .. } = cfg.api.auth else { panic!("signed") };
    assert_eq!(secret.expose(), "s3cr3t");
    let err = Config::parse(text, Path::new("t.toml"), &|_| None).unwrap_err().to_string();
    assert!(err.contains("api.secret_key_file") && err.contains("secret_key which cannot be read"), "{err}");
}

#[test]
fn metrics_are_off_unless_listen_is_set_and_a_bad_address_names_the_key() {
    assert_eq!(parse(GOOD).unwrap().metrics.listen, None);
    let on = parse(&format!("{GOOD}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n")).unwrap();
    assert_eq!(on.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
    let bad = error(&format!("{GOOD}\n[metrics]\nlisten = \"localhost\"\n"));
    assert!(bad.contains("metrics.listen") && bad.contains("127.0.0.1:9464") && bad.contains("localhost"), "{bad}");
    let unknown = error(&format!("{GOOD}\n[metrics]\nport = 9464\n"));
    assert!(unknown.contains("port"), "{unknown}");
}

#[test]
fn an_s3_output_dir_takes_storage_s3_and_works_locally_beside_the_state_database() {
    let s3 = |table: &str| {
        GOOD.replace("output_dir = \"/var/lib/tasksync/parquet\"", "output_dir = \"s3://analytics/transcode/vod/\"")
            + &format!("\n[storage.s3]\n{table}\n")
    };
    let cfg = parse(&s3("region = \"eu-west-1\"\naccess_key_id = \"AKIA1\"\nsecret_access_key_env = \"S3\"")).unwrap();
    let remote = cfg.storage.s3.as_ref().unwrap();
    assert_eq!((remote.bucket.as_str(), remote.prefix.as_str()), ("analytics", "transcode/vod"));
    assert_eq!(remote.conditional_put, ConditionalPut::Etag, "conditional PUTs by default");
    assert_eq!(cfg.storage.output_dir, Path::new("/var/lib/tasksync/s3-work"));
    assert!(format!("{cfg:?}").contains("Env(\"S3\")"), "the secret is named, not read, at load");

    let bad = error(&s3("conditional_put = \"maybe\""));
    assert!(bad.contains("storage.s3.conditional_put") && bad.contains("maybe"), "{bad}");
    let bad = error(&s3("endpoint = \"http://127.0.0.1:9000\""));
    assert!(bad.contains("storage.s3.endpoint") && bad.contains("allow_http"), "{bad}");
    let bad = error(&s3("access_key_id = \"AKIA1\""));
    assert!(bad.contains("secret_access_key_file") && bad.contains("never goes in this file"), "{bad}");
    let bad = error(&s3("secret_access_key = \"plain\""));
    assert!(bad.contains("secret_access_key"), "an inline secret is an unknown key: {bad}");
    let bad = error(&format!("{GOOD}\n[storage.s3]\nregion = \"x\"\n"));
    assert!(bad.contains("storage.s3") && bad.contains("only to an s3:// output_dir"), "{bad}");
    let bad = error(&GOOD.replace("/var/lib/tasksync/parquet\"", "s3:///nobucket\""));
    assert!(bad.contains("storage.output_dir") && bad.contains("no bucket"), "{bad}");
}
