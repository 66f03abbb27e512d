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
        ServiceError::Internal(_) | ServiceError::BrokenTable(_) => ErrorCode::InternalError,
    };
    let status = StatusCode::from_u16(http_status(e)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, code)
}

/// A service error answered in the shape of the router that refuses it: the Delta Sharing
/// `{"errorCode","message"}`, or the admin API's Unity-style `{"error_code","message"}` that the
/// Databricks SDK parses.
pub(crate) fn refusal(e: ServiceError, admin: bool) -> Response {
    let mut r = ApiError(e).into_response();
    if admin {
        // Same status, headers and code; the admin API's field name.
        let code = r
            .extensions()
            .get::<super::audit::ErrorCodeExt>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let message = r
            .extensions()
            .get::<PublicMessage>()
            .map(|m| m.0.clone())
            .unwrap_or_default();
        let body = serde_json::json!({ "error_code": code, "message": message }).to_string();
        let (mut parts, _) = r.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        r = Response::from_parts(parts, axum::body::Body::from(body));
    }
    r
}

/// The message an error response carries (kept for re-shaping it).
#[derive(Debug, Clone)]
pub(crate) struct PublicMessage(pub(crate) String);

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
        let mut response = (status, Json(ErrorBody::new(code, message.clone()))).into_response();
        response.extensions_mut().insert(PublicMessage(message));
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

/// The answer to a request body that could not be read: 408 when it did not arrive in time
/// (the connection's body deadline), else 413 (over `limit` bytes). Either way the connection
/// is closed, since the rest of the body is unread.
pub(crate) fn body_refusal(e: &axum::Error, limit: usize, admin: bool) -> Response {
    let timed_out = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |s| {
        s.source()
    })
    .any(|s| s.is::<super::conn::BodyTimeout>());
    let (status, message) = if timed_out {
        (StatusCode::REQUEST_TIMEOUT, e.to_string())
    } else {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let mut r = refusal(ServiceError::Malformed(message), admin);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
