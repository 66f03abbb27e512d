//! The single error → response mapping.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::error::{ErrorBody, ErrorCode};
use crate::service::ServiceError;
use crate::service::error::http_status;

/// A service error on its way to the client.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

/// Status and code for a service error.
pub(crate) fn classify(e: &ServiceError) -> (StatusCode, ErrorCode) {
    let code = match e {
        ServiceError::Unauthenticated(_) => ErrorCode::Unauthenticated,
        ServiceError::Forbidden(_) => ErrorCode::PermissionDenied,
        ServiceError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
        ServiceError::InvalidParameter(_) | ServiceError::RangeNotSatisfiable { .. } => {
            ErrorCode::InvalidParameterValue
        }
        ServiceError::Malformed(_) => ErrorCode::MalformedRequest,
        ServiceError::Unsupported(_) => ErrorCode::UnsupportedOperation,
        ServiceError::TooManyRequests { .. } => ErrorCode::ResourceExhausted,
        ServiceError::Conflict(_) => ErrorCode::ResourceAlreadyExists,
        ServiceError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
        ServiceError::Internal(_) => ErrorCode::InternalError,
    };
    let status = StatusCode::from_u16(http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, code)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = classify(&self.0);
        let message = match &self.0 {
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal server error".to_owned()
            }
            ServiceError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable");
                detail.clone()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody::new(code, message))).into_response();
        response
            .extensions_mut()
            .insert(super::audit::ErrorCodeExt(code.as_str().to_owned()));
        if let ServiceError::RangeNotSatisfiable { size } = self.0
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if let ServiceError::TooManyRequests { retry_after_s, .. } = &self.0 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"delta-sharing\""),
            );
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    }
}
