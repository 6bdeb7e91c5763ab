//! The data set on disk or in a bucket: its file format ([`format`]: the Arrow schema of
//! docs/contract.md, reading and writing files), where its bytes go ([`store`]: local or
//! S3, staging areas, partition locks), and the rejects file ([`rejects`]). When anything
//! here becomes visible to readers is the commit's to say (`commit/`).
//!
//! Arrows run one way: `store -> format` only for its unit tests' helpers, `rejects ->
//! store`; `format` imports neither.

pub mod format;
pub mod rejects;
pub mod store;

/// Why the sink could not read or write a file; every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot {action} Parquet file {path}: {message}")]
    Parquet { action: &'static str, path: std::path::PathBuf, message: String },
    /// A stored partition file that cannot be read (corrupt, truncated, empty): its window
    /// is left behind alone, every other window goes on.
    #[error(
        "partition file {path} cannot be read ({message}); its day waits while every other day goes on: move the file aside and sync that day again (docs/exactness.md, \"A partition file that cannot be read\")"
    )]
    Unreadable { path: std::path::PathBuf, message: String },
    /// The object store refused or failed a request.
    #[error("cannot {action} {key}: {message}")]
    Remote { action: &'static str, key: String, message: String },
    /// Another writer replaced the object after this one read it (a precondition failed).
    #[error("another writer replaced {key} after this window read it")]
    Conflict { key: String },
}

impl SinkError {
    pub(crate) fn remote(action: &'static str, key: &str, message: String) -> SinkError {
        SinkError::Remote { action, key: key.to_string(), message: crate::presigned::scrub(&message).into_owned() }
    }

    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
        move |source| SinkError::Io { action, path: path.to_path_buf(), source }
    }
}
