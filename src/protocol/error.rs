//! The protocol's error body: `{"errorCode": "...", "message": "..."}`.

use serde::Serialize;

/// Error codes used in [`ErrorBody::error_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 404: unknown (or ungranted) share, schema, table or query.
    ResourceDoesNotExist,
    /// 400: a parameter has an invalid value.
    InvalidParameterValue,
    /// 400: the request body or a header could not be parsed.
    MalformedRequest,
    /// 400: the table needs a capability the client did not announce.
    UnsupportedOperation,
    /// 401: missing, unknown, revoked or expired credentials.
    Unauthenticated,
    /// 403: the caller is known but not allowed (e.g. a bad file-URL signature).
    PermissionDenied,
    /// 409: the object exists already.
    ResourceAlreadyExists,
    /// 429: a limit was reached; retry later.
    ResourceExhausted,
    /// 500: an unexpected server error.
    InternalError,
    /// 503: a dependency (catalog, storage) is unavailable.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::MalformedRequest => "MALFORMED_REQUEST",
            Self::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::InternalError => "INTERNAL_ERROR",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
        }
    }
}

/// The JSON error body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// One of [`ErrorCode`]'s spellings.
    pub error_code: String,
    /// Human-readable explanation naming what was wrong.
    pub message: String,
}

impl ErrorBody {
    /// Builds a body from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error_code: code.as_str().to_owned(),
            message: message.into(),
        }
    }
}
