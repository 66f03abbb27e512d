//! Storage errors, mapped to semantic variants at this module's edge.

/// Errors of table locations, signing and file serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The location or path is not acceptable.
    #[error("invalid location: {0}")]
    InvalidLocation(String),
    /// The location's store is not supported by this build.
    #[error(
        "unsupported storage location '{0}': use a local path, file://, s3://, s3a://, abfss://, \
         wasbs://, az://, https://<account>.blob.core.windows.net/... or gs://"
    )]
    Unsupported(String),
    /// A path resolved outside the table root.
    #[error("path '{0}' is outside the table root")]
    OutsideRoot(String),
    /// The file does not exist.
    #[error("file not found")]
    NotFound,
    /// A signature or expiry check failed.
    #[error("{0}")]
    Forbidden(String),
    /// The requested byte range cannot be served.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// Object size.
        size: u64,
    },
    /// No signing key is available: refuse rather than hand out an unsigned URL.
    #[error("no signing key available")]
    NoSigningKey,
    /// The object store could not be reached or refused our credentials (retryable).
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// The store's settings are wrong or incomplete.
    #[error("storage configuration: {0}")]
    Config(String),
    /// An I/O error.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}
