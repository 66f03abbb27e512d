//! Service errors: one variant per protocol error class.

use crate::catalog::CatalogError;
use crate::delta::DeltaError;
use crate::storage::error::StorageError;

/// Errors of recipient operations. The HTTP layer maps each variant to one status and code.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceError {
    /// 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404 (also for objects not granted to the caller).
    #[error("{0}")]
    NotFound(String),
    /// 400 INVALID_PARAMETER_VALUE.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 MALFORMED_REQUEST.
    #[error("{0}")]
    Malformed(String),
    /// 400 UNSUPPORTED_OPERATION.
    #[error("{0}")]
    Unsupported(String),
    /// 416 for file ranges.
    #[error("range not satisfiable")]
    RangeNotSatisfiable {
        /// Object size.
        size: u64,
    },
    /// 409: the object exists already.
    #[error("{0}")]
    Conflict(String),
    /// 429: over a limit; retry after the given number of seconds.
    #[error("{message}")]
    TooManyRequests {
        /// Explanation.
        message: String,
        /// Seconds until a retry makes sense.
        retry_after_s: u64,
    },
    /// 503: a dependency is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500 with a message about the table (a corrupt or unreadable Delta log): a problem of
    /// the provider's table, named for the recipient, never storage locations.
    #[error("{0}")]
    BrokenTable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

/// A kernel message without storage locations (URLs and absolute paths are the provider's).
fn redact_locations(m: &str) -> String {
    m.split(' ')
        .map(|w| {
            let bare = w.trim_matches(|c: char| "\"'`(),:;[]{}".contains(c));
            if bare.contains("://") || bare.starts_with('/') {
                "<location>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl From<crate::domain::limits::Exceeded> for ServiceError {
    fn from(e: crate::domain::limits::Exceeded) -> Self {
        Self::TooManyRequests {
            message: format!(
                "recipient limit of {} reached; retry in {} s",
                e.what, e.retry_after_s
            ),
            retry_after_s: e.retry_after_s,
        }
    }
}

impl From<CatalogError> for ServiceError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Unavailable(m) => {
                // The database's own words stay in the provider's log.
                tracing::warn!(error = %m, "state store unavailable");
                Self::Unavailable("the state store is unavailable; retry later".to_owned())
            }
            CatalogError::Conflict(m) => Self::Conflict(format!("{m} already exists")),
            CatalogError::NotFound(m) => Self::NotFound(format!("{m} does not exist")),
            CatalogError::Invalid(m) => Self::InvalidParameter(m),
        }
    }
}

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Forbidden(m) => Self::Forbidden(m),
            StorageError::NotFound => Self::NotFound("file not found".to_owned()),
            StorageError::OutsideRoot(_) => {
                Self::Forbidden("the file is not inside a shared table".to_owned())
            }
            StorageError::RangeNotSatisfiable { size } => Self::RangeNotSatisfiable { size },
            StorageError::NoSigningKey => Self::Unavailable("no URL signing key available".into()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ServiceError {
    /// Maps a table-reading error for table `name` (`share.schema.table`).
    pub(crate) fn from_delta(e: DeltaError, name: &str) -> Self {
        match e {
            DeltaError::TableNotFound => Self::NotFound(format!(
                "table files missing: no Delta table at the location of table '{name}'"
            )),
            DeltaError::VersionNotFound { version, reason } => Self::InvalidParameter(format!(
                "Cannot load table version {version} of table '{name}': {reason}"
            )),
            DeltaError::Unsupported(m) => {
                tracing::warn!(table = %name, error = %m, "table cannot be served");
                Self::Unsupported(format!(
                    "table '{name}' cannot be served by this server: {}",
                    redact_locations(&m)
                ))
            }
            DeltaError::Kernel(m) => {
                tracing::error!(table = %name, error = %m, "table log unreadable");
                Self::BrokenTable(format!(
                    "the Delta log of table '{name}' cannot be read: {}; the provider must \
                     repair the table",
                    redact_locations(&m)
                ))
            }
            DeltaError::Unavailable(m) => {
                tracing::warn!(table = %name, error = %m, "table storage unavailable");
                Self::Unavailable(format!(
                    "the storage of table '{name}' is unavailable; retry later"
                ))
            }
        }
    }
}

/// The HTTP status a client should act on for `e` (also sent in-band in an `endStreamAction`).
pub(crate) fn http_status(e: &ServiceError) -> u16 {
    match e {
        ServiceError::Unauthenticated(_) => 401,
        ServiceError::Forbidden(_) => 403,
        ServiceError::NotFound(_) => 404,
        ServiceError::InvalidParameter(_)
        | ServiceError::Malformed(_)
        | ServiceError::Unsupported(_) => 400,
        ServiceError::RangeNotSatisfiable { .. } => 416,
        ServiceError::Conflict(_) => 409,
        ServiceError::TooManyRequests { .. } => 429,
        ServiceError::Unavailable(_) => 503,
        ServiceError::Internal(_) | ServiceError::BrokenTable(_) => 500,
    }
}
