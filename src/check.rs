//! `tasksync check`: validates the config, opens the state and the output, and makes one
//! signed request for the last hour, saying plainly what worked and what did not.

use crate::config::Config;
use crate::source::PageQuery;
use crate::source::client::Client;
use crate::time::Clock;

/// Runs the checks, printing one line per check; `Err` is the first failure, in a sentence.
pub async fn check(cfg: &Config, config_path: &str, clock: Clock) -> anyhow::Result<()> {
    println!("config {config_path}: ok");
    // Read-only: an operator running check as root must not leave root-owned files
    // (a WAL, a new database) that the service's user then cannot write.
    match crate::state::State::open_read_only(&cfg.storage.state_db) {
        Ok(state) => {
            println!("state {}: opened, integrity_check {}", cfg.storage.state_db.display(), state.integrity_check()?)
        }
        Err(_) if !cfg.storage.state_db.exists() => {
            println!("state {}: none yet (the first sync creates it)", cfg.storage.state_db.display())
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(s3) = &cfg.storage.s3 {
        let remote = crate::sink::store::remote::Remote::open(s3)?;
        let said = remote.probe().await.map_err(|m| anyhow::anyhow!(m))?;
        println!("storage {}: {said}", s3.url());
    } else {
        local_probe(cfg)?;
    }

    let mut api = cfg.api.clone();
    api.max_retries = api.max_retries.min(1);
    let client = Client::new(&api, cfg.storage.keep_url_query, clock.clone(), std::sync::Arc::new(()))
        .map_err(|e| anyhow::anyhow!(e))?;
    let now = clock();
    let query = PageQuery { start: now - 3600, end: now, offset: 0, count: api.page_size };
    let page = client.list_page(query).await.map_err(|e| anyhow::anyhow!("api {}: {e}", cfg.api.base_url))?;
    let signed = matches!(cfg.api.auth, crate::config::Auth::Visionular { .. });
    println!(
        "api {}: {}; {} tasks created in the last hour",
        cfg.api.base_url,
        if signed { "signed request accepted" } else { "request accepted (auth = \"none\")" },
        page.total.unwrap_or(0)
    );
    Ok(())
}

/// The output directory takes a file (written and removed at once).
fn local_probe(cfg: &Config) -> anyhow::Result<()> {
    let probe = cfg.storage.output_dir.join(format!(".tasksync-check-{}", std::process::id()));
    std::fs::create_dir_all(&cfg.storage.output_dir)
        .and_then(|_| std::fs::write(&probe, b"probe"))
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| anyhow::anyhow!("output directory {} is not writable: {e}", cfg.storage.output_dir.display()))?;
    println!("output {}: writable", cfg.storage.output_dir.display());
    Ok(())
}
