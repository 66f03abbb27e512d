//! Reading Delta tables through `delta_kernel`: snapshots cached per (table, version), the
//! active file list of a snapshot, table metadata and protocol, and the commit timeline used
//! to resolve timestamps.
//!
//! Knows nothing of recipients, HTTP or signing. All functions here are blocking: the service
//! calls them under `spawn_blocking`.

mod cache;
pub mod changes;
pub mod files;
pub mod info;
pub mod reader;
pub mod timeline;

/// Errors of table reading, mapped from kernel errors at this edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// There is no Delta table at the location.
    #[error("no Delta table found at the table location")]
    TableNotFound,
    /// The version does not exist (or cannot be reconstructed).
    #[error("cannot load table version {version}: {reason}")]
    VersionNotFound {
        /// Requested version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// The log is unreadable or invalid.
    #[error("cannot read the Delta log: {0}")]
    Kernel(String),
    /// The table uses something this server cannot serve: a reader version or feature, a
    /// column type, a column-mapping mode.
    #[error("the table cannot be served: {0}")]
    Unsupported(String),
    /// The table's store cannot be reached, refuses our credentials, or is misconfigured
    /// (retryable from the recipient's side).
    #[error("the table's storage is unavailable: {0}")]
    Unavailable(String),
}

impl From<delta_kernel::KernelError> for DeltaError {
    fn from(e: delta_kernel::KernelError) -> Self {
        use delta_kernel::KernelError as K;
        match e.without_backtrace() {
            K::Unsupported(m) => Self::Unsupported(m.clone()),
            K::InvalidProtocol(m) => Self::Unsupported(format!("protocol: {m}")),
            K::InvalidColumnMappingMode(m) => Self::Unsupported(format!("column mapping: {m}")),
            K::Schema(m) => Self::Unsupported(format!("schema: {m}")),
            K::ParseError(v, t) => Self::Unsupported(format!("cannot parse '{v}' as {t}")),
            K::ChangeDataFeedUnsupported(v) => {
                Self::Unsupported(format!("change data feed at version {v}"))
            }
            other => Self::Kernel(other.to_string()),
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, DeltaError>;
