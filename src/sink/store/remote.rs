//! The data set on S3-compatible object storage (`storage.output_dir = "s3://bucket/prefix"`),
//! through the Arrow project's `object_store`: the same keys as the local layout, each
//! partition replaced by one conditional PUT.
//!
//! Where these requests fall in a window's commit is the protocol table of `commit/mod.rs`
//! (its object-storage column): the stored object is fetched whole with one GET, whose
//! ETag names exactly the bytes merged (ranged reads could mix two versions of a file
//! another writer replaces meanwhile); the new file is staged locally; then one PUT to the
//! final key, `If-None-Match: *` when there was no object and `If-Match: <that ETag>`
//! otherwise, so that no temporary key ever appears under `tasks/`. A precondition failure
//! is [`SinkError::Conflict`]: the window is walked again (bounded, see `sync/window.rs`).
//!
//! With `conditional_put = "none"` the PUT is a plain one: one writer per prefix is then
//! the rule (docs/configuration.md, "On object storage"). Only the partition locks of one work directory
//! keep writers apart then (the service and a backfill beside it share it), so the first
//! work directory to write a prefix claims it in `_writer.json`, and any other is refused
//! with a sentence ([`Remote::claim`]).
//!
//! Every request here is async and runs on the runtime's workers, never inside a blocking
//! thread: a request waiting there holds a thread that a new connection to an endpoint
//! given by name needs to resolve it, and a busy pass could hold them all (a stall). The
//! PUT's body is the staged file memory-mapped, not copied onto the heap.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};

use crate::config::{ConditionalPut, S3Config};
use crate::sink::SinkError;

/// One bucket and prefix, and how to write there.
#[derive(Clone)]
pub struct Remote {
    /// The client (signing, retries, connection pool).
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/prefix`, for messages.
    pub url: String,
    /// The prefix every key starts with (may be empty).
    prefix: Key,
    /// Whether PUTs carry `If-None-Match` / `If-Match`.
    conditional: bool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).field("conditional", &self.conditional).finish()
    }
}

impl Remote {
    /// Builds the client from `[storage.s3]`, reading the secret access key now.
    pub fn open(cfg: &S3Config) -> Result<Remote, SinkError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_virtual_hosted_style_request(cfg.virtual_hosted_style)
            .with_conditional_put(match cfg.conditional_put {
                ConditionalPut::Etag => S3ConditionalPut::ETagMatch,
                ConditionalPut::None => S3ConditionalPut::Disabled,
            })
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &cfg.endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(id) = &cfg.access_key_id {
            let secret = cfg.secret.load().map_err(|m| SinkError::remote("open", &cfg.url(), m))?;
            b = b.with_access_key_id(id).with_secret_access_key(secret.expose());
        }
        let store = b.build().map_err(|e| SinkError::remote("open", &cfg.url(), e.to_string()))?;
        Ok(Remote {
            store: Arc::new(store),
            url: cfg.url(),
            prefix: Key::from(cfg.prefix.as_str()),
            conditional: cfg.conditional_put == ConditionalPut::Etag,
        })
    }

    /// The key of `rel` (`tasks/create_date=D/part-0.parquet`) under the prefix.
    pub fn key(&self, rel: &str) -> Key {
        rel.split('/').fold(self.prefix.clone(), |k, part| k.join(part))
    }

    /// `s3://bucket/prefix/rel`, for messages.
    pub fn show(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url.trim_end_matches('/'))
    }

    /// Step 1: the object at `rel` streamed into `to`, fsynced; its ETag, or `None` when
    /// there is no object (and `to` is not created).
    pub async fn fetch(&self, rel: &str, to: &Path) -> Result<Option<String>, SinkError> {
        self.get_into(rel, to).await
    }

    /// Step 3: one PUT of the file at `from` to `rel`, conditional on `base` (the ETag of
    /// the object merged, `None`: there was none).
    pub async fn upload(&self, rel: &str, from: &Path, base: Option<&str>) -> Result<(), SinkError> {
        let payload = mapped(from)?;
        let mode = match (self.conditional, base) {
            (false, _) => PutMode::Overwrite,
            (true, None) => PutMode::Create,
            (true, Some("")) => {
                let m = "the store sent no ETag with it, so it cannot be replaced conditionally; set storage.s3.conditional_put = \"none\" (one writer per prefix)";
                return Err(SinkError::remote("replace", &self.show(rel), m.into()));
            }
            (true, Some(etag)) => {
                PutMode::Update(object_store::UpdateVersion { e_tag: Some(etag.to_string()), version: None })
            }
        };
        let opts = PutOptions { mode, ..PutOptions::default() };
        let put = self.store.put_opts(&self.key(rel), payload, opts).await;
        match put {
            Ok(_) => Ok(()),
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                Err(SinkError::Conflict { key: self.show(rel) })
            }
            Err(e) => Err(SinkError::remote("write", &self.show(rel), e.to_string())),
        }
    }

    /// A small object written whole (the rejects), unconditionally.
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        let put = self.store.put(&self.key(rel), PutPayload::from(bytes)).await;
        put.map(|_| ()).map_err(|e| SinkError::remote("write", &self.show(rel), e.to_string()))
    }

    /// With plain PUTs, makes sure this work directory is the prefix's one writer: the
    /// first to write claims the prefix in `_writer.json` (the host's machine id and the
    /// directory); a pass from any other is refused, naming the claim and how to move it.
    /// Nothing to do with conditional PUTs, which keep any number of writers exact.
    pub async fn claim(&self, work_dir: &Path) -> Result<(), SinkError> {
        if self.conditional {
            return Ok(());
        }
        let me = writer_identity(work_dir);
        let (rel, key) = ("_writer.json", self.key("_writer.json"));
        let claimed = match self.store.get(&key).await {
            Ok(got) => got.bytes().await.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(object_store::Error::NotFound { .. }) => {
                let body =
                    serde_json::json!({ "writer": me, "note": "conditional_put = \"none\": one writer per prefix" });
                return self.put(rel, body.to_string().into_bytes()).await;
            }
            Err(e) => Err(e),
        };
        let claimed = claimed.map_err(|e| SinkError::remote("read", &self.show(rel), e.to_string()))?;
        let writer = serde_json::from_str::<serde_json::Value>(&claimed)
            .ok()
            .and_then(|v| v.get("writer").and_then(|w| w.as_str()).map(str::to_string))
            .unwrap_or(claimed);
        if writer == me {
            return Ok(());
        }
        let why = format!(
            "with conditional_put = \"none\" one work directory writes a prefix, and {writer} does (this one is {me}); \
             run only that one, use a store with conditional PUTs, or, if that writer is gone for good, delete {}",
            self.show(rel)
        );
        Err(SinkError::remote("claim", &self.url, why))
    }

    /// Every key under `rel/` (relative to the prefix), with its size, sorted.
    pub async fn list(&self, rel: &str) -> Result<Vec<(String, u64)>, SinkError> {
        let base = self.key(rel);
        let mut found = Vec::new();
        let mut listing = self.store.list(Some(&base));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| SinkError::remote("list", &self.show(rel), e.to_string()))?;
            let full = meta.location.as_ref();
            let relative = full.strip_prefix(self.prefix.as_ref()).unwrap_or(full).trim_start_matches('/');
            found.push((relative.to_string(), meta.size));
        }
        found.sort();
        Ok(found)
    }

    /// `check`: lists the prefix, writes and deletes a probe object outside `tasks/`, and
    /// with conditional PUTs makes sure the store refuses a second `If-None-Match: *`.
    /// Returns what worked, or one sentence naming the key to fix.
    pub async fn probe(&self) -> Result<String, String> {
        let objects = self.list("").await.map_err(|e| self.explain(&e.to_string()))?.len();
        let rel = format!("_probe/tasksync-check-{}", std::process::id());
        let key = self.key(&rel);
        if !self.conditional {
            let put = self.store.put(&key, PutPayload::from_static(b"probe")).await;
            put.map_err(|e| self.explain(&e.to_string()))?;
            self.store.delete(&key).await.map_err(|e| self.explain(&e.to_string()))?;
            let how = "no conditional writes (conditional_put = \"none\": one writer per prefix)";
            return Ok(format!("{objects} objects listed, probe written and deleted, {how}"));
        }
        let create = || PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        let first = self.store.put_opts(&key, PutPayload::from_static(b"probe"), create()).await;
        first.map_err(|e| self.explain(&e.to_string()))?;
        let second = self.store.put_opts(&key, PutPayload::from_static(b"probe again"), create()).await;
        let _ = self.store.delete(&key).await;
        let conditional = match second {
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                "conditional writes refused as they must be"
            }
            Ok(_) => {
                return Err(format!(
                    "storage {}: the store ignored If-None-Match (a second create of {} succeeded), so writers could \
                     overwrite each other; set storage.s3.conditional_put = \"none\" and keep one writer per prefix",
                    self.url,
                    self.show(&rel)
                ));
            }
            Err(e) => return Err(self.explain(&e.to_string())),
        };
        Ok(format!("{objects} objects listed, probe written and deleted, {conditional}"))
    }

    /// A store error as one sentence naming the key to fix.
    fn explain(&self, error: &str) -> String {
        let fix = if error.contains("NoSuchBucket") {
            "the bucket does not exist: check storage.output_dir (and storage.s3.endpoint, storage.s3.region)"
        } else if ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"]
            .iter()
            .any(|c| error.contains(c))
        {
            "the store refused the credentials: check storage.s3.access_key_id and the secret access key"
        } else if ["error sending request", "onnect", "dns", "timed out"].iter().any(|c| error.contains(c)) {
            "the store cannot be reached: check storage.s3.endpoint (and storage.s3.allow_http for http://)"
        } else {
            "the store failed the request"
        };
        format!("storage {}: {fix} ({})", self.url, crate::presigned::scrub(error))
    }

    /// The object at `rel` streamed into `to`; for `verify`.
    pub async fn download(&self, rel: &str, to: &Path) -> Result<(), SinkError> {
        match self.get_into(rel, to).await? {
            Some(_) => Ok(()),
            None => Err(SinkError::remote("read", &self.show(rel), "it was deleted while being read".into())),
        }
    }

    /// One GET of `rel` streamed into `to` and fsynced; the ETag (empty when the store
    /// sends none), or `None` when there is no object.
    async fn get_into(&self, rel: &str, to: &Path) -> Result<Option<String>, SinkError> {
        let got = match self.store.get(&self.key(rel)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(SinkError::remote("read", &self.show(rel), e.to_string())),
        };
        let etag = got.meta.e_tag.clone().unwrap_or_default();
        // tokio's files write from the blocking pool one chunk at a time: no thread waits.
        let mut file = tokio::fs::File::create(to).await.map_err(SinkError::io("create", to))?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| SinkError::remote("read", &self.show(rel), e.to_string()))?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await.map_err(SinkError::io("write", to))?;
        }
        file.sync_all().await.map_err(SinkError::io("fsync", to))?;
        Ok(Some(etag))
    }
}

/// The file at `path` as a PUT's body, memory-mapped: a day of a million tasks is sent
/// without its 80 MB on the heap. The staged file is this process's own and never written
/// again once staged, so the mapping cannot change under the request.
fn mapped(path: &Path) -> Result<PutPayload, SinkError> {
    let file = std::fs::File::open(path).map_err(SinkError::io("open", path))?;
    if file.metadata().map_err(SinkError::io("read", path))?.len() == 0 {
        return Ok(PutPayload::new());
    }
    // SAFETY: the file is a staged file of this process, complete and fsynced; nothing
    // truncates or rewrites it while the mapping lives (see above).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(SinkError::io("map", path))?;
    Ok(PutPayload::from(bytes::Bytes::from_owner(map)))
}

/// `<machine id or host name>:<work directory>`: who writes a prefix with plain PUTs.
fn writer_identity(work_dir: &Path) -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let host = read("/etc/machine-id").or_else(|| read("/proc/sys/kernel/hostname")).unwrap_or_default();
    let dir = std::fs::canonicalize(work_dir).unwrap_or_else(|_| work_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}
