//! Helpers of the object-storage tests: moto's S3 server on a free loopback port, a proxy
//! in front of it that can break PUTs or strip conditional headers, configs writing to
//! it, and a local mirror of what the bucket holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};

use super::common::config_text;

pub const BUCKET: &str = "tasks-bucket";
pub const PREFIX: &str = "exports/vod";

/// moto's S3 server, stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    /// Starts `moto_server` and creates [`BUCKET`].
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (.ci/run installs `moto[server]`)");
        let moto = Moto { child, port };
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "moto_server listens within 10 s");
        let created = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .arg(format!("http://127.0.0.1:{port}/{BUCKET}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&created.stdout), "200", "the bucket is created");
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The `[storage.s3]` table for `endpoint`, with the secret in `dir/s3_secret`.
pub fn s3_table(dir: &Path, endpoint: &str, extra: &str) -> String {
    std::fs::write(dir.join("s3_secret"), "moto-accepts-any-secret\n").unwrap();
    format!(
        "\n[storage.s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"testing\"\n\
         secret_access_key_file = \"{}\"\nallow_http = true\n{extra}\n",
        dir.join("s3_secret").display()
    )
}

/// The test config text (see `common::config_text`) writing to `s3://BUCKET/PREFIX`.
pub fn s3_config_text(url: &str, dir: &Path, endpoint: &str, sections: &str, s3_extra: &str) -> String {
    let local = dir.join("out").display().to_string();
    config_text(url, dir, "", sections).replace(&local, &format!("s3://{BUCKET}/{PREFIX}"))
        + &s3_table(dir, endpoint, s3_extra)
}

/// A parsed S3 config (the API secret from an injected environment).
pub fn s3_config(url: &str, dir: &Path, endpoint: &str) -> tasksync::config::Config {
    let text = s3_config_text(url, dir, endpoint, "", "");
    tasksync::config::Config::parse(&text, Path::new("s3.toml"), &|_| Some(super::common::SK.to_string())).unwrap()
}

/// A client of the bucket, for reading back what tasksync wrote.
pub fn store(endpoint: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .unwrap(),
    )
}

/// Every key in the bucket with its ETag, sorted.
pub async fn keys(endpoint: &str) -> Vec<(String, String)> {
    let store = store(endpoint);
    let mut out = Vec::new();
    let mut list = store.list(None);
    while let Some(meta) = list.next().await {
        let meta = meta.unwrap();
        out.push((meta.location.to_string(), meta.e_tag.unwrap_or_default()));
    }
    out.sort();
    out
}

/// Downloads every object under `PREFIX/` into `to/`, keeping the layout; returns `to`.
pub async fn mirror(endpoint: &str, to: &Path) -> PathBuf {
    let store = store(endpoint);
    let _ = std::fs::remove_dir_all(to);
    for (key, _) in keys(endpoint).await {
        let rel = key.strip_prefix(&format!("{PREFIX}/")).expect("every key is under the prefix");
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = store.get(&key.as_str().into()).await.unwrap().bytes().await.unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    to.to_path_buf()
}

/// A TCP proxy in front of moto that can fail PUTs mid-way (the connection closes after
/// their headers), strip conditional headers (a store that ignores them), or refuse the
/// next PUTs of `task_history/` objects with 412 (another writer got there first).
pub struct Proxy {
    pub port: u16,
    pub fail_puts: Arc<AtomicBool>,
    pub strip_conditions: Arc<AtomicBool>,
    pub refuse_history_puts: Arc<std::sync::atomic::AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (fail_puts, strip_conditions) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let refuse_history_puts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (f, s, r) = (fail_puts.clone(), strip_conditions.clone(), refuse_history_puts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (f, s, r) = (f.clone(), s.clone(), r.clone());
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = pipe(client, server, f, s, r).await;
                    }
                });
            }
        });
        Proxy { port, fail_puts, strip_conditions, refuse_history_puts, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn pipe(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    fail_puts: Arc<AtomicBool>,
    strip: Arc<AtomicBool>,
    refuse_history: Arc<std::sync::atomic::AtomicU32>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let refusing = cw.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            let mut chunk = buf[..n].to_vec();
            let history_put = chunk.starts_with(b"PUT ")
                && String::from_utf8_lossy(&chunk).lines().next().is_some_and(|l| l.contains("task_history"));
            let refuse = |n: u32| n.checked_sub(1);
            if history_put && refuse_history.fetch_update(Ordering::SeqCst, Ordering::SeqCst, refuse).is_ok() {
                let answer = b"HTTP/1.1 412 Precondition Failed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                refusing.lock().await.write_all(answer).await?;
                return Ok(());
            }
            if chunk.starts_with(b"PUT ") && fail_puts.load(Ordering::SeqCst) {
                // Half the request reaches the server, then the connection breaks.
                sw.write_all(&chunk[..chunk.len() / 2]).await?;
                return Ok(());
            }
            if strip.load(Ordering::SeqCst) && chunk.starts_with(b"PUT ") {
                let text = String::from_utf8_lossy(&chunk).into_owned();
                let kept: Vec<&str> = text
                    .split("\r\n")
                    .filter(|l| {
                        let l = l.to_ascii_lowercase();
                        !l.starts_with("if-none-match:") && !l.starts_with("if-match:")
                    })
                    .collect();
                chunk = kept.join("\r\n").into_bytes();
            }
            sw.write_all(&chunk).await?;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            cw.lock().await.write_all(&buf[..n]).await?;
        }
    };
    tokio::select! { r = up => r, r = down => r }
}
