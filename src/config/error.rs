//! Why a configuration could not be used: each error names the file and the key.

use std::path::PathBuf;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema (unknown key, wrong type, missing key).
    #[error("config file {path}{place}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in it (" line L, column C"), or empty when the parser did not say.
        place: String,
        /// What is wrong, in the parser's words.
        message: String,
    },
    /// A key parsed but its value is unusable.
    #[error("config file {path}: `{key}` {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key, dotted (`api.base_url`).
        key: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}
