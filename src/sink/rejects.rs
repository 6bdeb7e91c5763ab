//! The rejects file: records that could not become rows, kept raw with the reason, as
//! JSON lines under `{output_dir}/_rejects/` (outside `tasks/`, so readers never see them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::SinkError;
use crate::source::decode::Reject;

/// One run's rejects file, created at the first reject and fsynced before each checkpoint.
pub struct RejectLog {
    /// `{output_dir}/_rejects/run-<start>-<pid>.jsonl`.
    path: PathBuf,
    /// Opened lazily: a run without rejects leaves no file.
    file: Mutex<Option<std::fs::File>>,
    /// For an output on object storage: the file is kept in the local work directory and
    /// uploaded whole (same key, `_rejects/<name>`) after each append.
    remote: Option<super::store::remote::Remote>,
    /// Serializes uploads, each reading the file as it is then: windows commit
    /// concurrently, and an older copy PUT last would drop a newer window's rejects.
    publishing: tokio::sync::Mutex<()>,
}

impl RejectLog {
    pub fn new(output_dir: &Path, run_started: i64, remote: Option<super::store::remote::Remote>) -> RejectLog {
        let path = output_dir.join("_rejects").join(format!("run-{run_started}-{}.jsonl", std::process::id()));
        RejectLog { path, file: Mutex::new(None), remote, publishing: tokio::sync::Mutex::new(()) }
    }

    /// Appends the rejects of one window and fsyncs them (they must be durable before the
    /// window's checkpoint, like the rows). Returns whether anything was appended: on
    /// object storage, [`RejectLog::publish`] must follow before the checkpoint.
    pub fn append(&self, window: &str, seen_at: i64, rejects: &[Reject]) -> Result<bool, SinkError> {
        if rejects.is_empty() {
            return Ok(false);
        }
        let mut guard = self.file.lock().expect("the rejects lock is never poisoned");
        if guard.is_none() {
            let dir = self.path.parent().expect("the rejects file has a directory");
            std::fs::create_dir_all(dir).map_err(SinkError::io("create directory", dir))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.path)
                .map_err(SinkError::io("open", &self.path))?;
            *guard = Some(file);
        }
        let file = guard.as_mut().expect("opened above");
        let mut buf = Vec::new();
        for r in rejects {
            let line = serde_json::json!({ "seen_at": crate::time::show(seen_at), "window": window, "reason": r.reason, "record": r.raw });
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
        append_whole(file, &buf).map_err(SinkError::io("append to", &self.path))?;
        Ok(true)
    }

    /// The whole file uploaded to the same key (`_rejects/<name>`) on object storage,
    /// where the local file is only a copy. Read after the previous upload finished, so
    /// the last PUT always carries every append made before it.
    pub async fn publish(&self) -> Result<(), SinkError> {
        let Some(remote) = &self.remote else { return Ok(()) };
        let _one_at_a_time = self.publishing.lock().await;
        let whole = std::fs::read(&self.path).map_err(SinkError::io("read", &self.path))?;
        let name = self.path.file_name().expect("a file name").to_string_lossy();
        remote.put(&format!("_rejects/{name}"), whole).await
    }
}

/// Appends `buf` and fsyncs it, or leaves the file as it was: a write cut short (a full
/// disk, a file size limit) is truncated back, so the next append does not glue its first
/// line onto a torn one.
fn append_whole(file: &mut std::fs::File, buf: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let before = file.metadata()?.len();
    // A torn line that could not be truncated (see below) is ended before the next one.
    let mut last = [b'\n'];
    if before > 0 {
        file.read_exact_at(&mut last, before - 1)?;
    }
    let ended = if last[0] == b'\n' { Ok(()) } else { file.write_all(b"\n") };
    let written = ended.and_then(|()| file.write_all(buf)).and_then(|()| file.sync_data());
    if let Err(error) = written {
        // Best effort: when even the truncation fails, the write's error is the one to tell.
        if file.set_len(before).and_then(|()| file.sync_data()).is_err() {
            tracing::warn!(error = %error, "Could not truncate a torn append to the rejects file back");
        }
        return Err(error);
    }
    Ok(())
}
