//! A secret that never prints: the API's secret key and S3's secret access key.

/// A secret that never prints: its `Debug` is a placeholder.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from a file or the environment.
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    /// The only way to read the value; grep for it to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it was read (a read-only command's config holds none).
    pub fn is_loaded(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
