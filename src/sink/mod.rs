//! The Parquet sink: the Arrow schema of CONTRACT.md ([`schema`]), the pure merge
//! ([`merge`]), reading stored files ([`reader`]), writing and atomically replacing them
//! (the durable write path, [`writer`]), the streaming rewrite of one partition that ties
//! those together ([`partition`]), and the rejects file ([`rejects`]).
//!
//! Arrows run one way: `partition -> {merge, reader, writer}`, `reader -> {merge, schema}`,
//! `writer -> schema`.

pub mod merge;
pub mod partition;
pub mod reader;
pub mod rejects;
pub mod schema;
pub mod staging;
pub mod writer;

/// Why the sink could not read or write a file; every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot {action} {path}: {source}")]
    Io { action: &'static str, path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot {action} Parquet file {path}: {message}")]
    Parquet { action: &'static str, path: std::path::PathBuf, message: String },
}

impl SinkError {
    pub(crate) fn io<'a>(
        action: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
        move |source| SinkError::Io { action, path: path.to_path_buf(), source }
    }
}
