//! The core's error type. Each variant maps to one Ruby exception class in
//! the binding.

/// Errors a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A flags payload (bootstrap, file, server response) is malformed.
    #[error("invalid flags payload: {0}")]
    InvalidPayload(String),
    /// A configuration value is wrong.
    #[error("{0}")]
    InvalidConfig(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot read", ...).
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
