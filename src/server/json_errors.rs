//! Every error answer is a JSON protocol error. axum's own refusals (a query string it cannot
//! deserialize, such as a duplicated parameter; a path that is not UTF-8; a method the route
//! does not have; a body extractor's limit) come as `text/plain` or with no body: this layer
//! rewrites them into the body the clients parse, keeping status and headers and naming what
//! was wrong.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::protocol::error::ErrorCode;

/// Which error body shape the router speaks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ErrorStyle {
    /// Delta Sharing: `{"errorCode", "message"}`.
    Recipient,
    /// Unity-style admin API: `{"error_code", "message"}`.
    Admin,
}

/// JSON errors, and the HTML pages Lakeshare renders on purpose (the activation landing
/// page's "already used"), are left as they are.
fn is_deliberate(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

fn code_for(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::ResourceDoesNotExist,
        409 => ErrorCode::ResourceAlreadyExists,
        429 => ErrorCode::ResourceExhausted,
        400 => ErrorCode::InvalidParameterValue,
        503 => ErrorCode::TemporarilyUnavailable,
        s if s >= 500 => ErrorCode::InternalError,
        _ => ErrorCode::MalformedRequest,
    }
}

/// Middleware: JSON bodies for every 4xx/5xx answer.
pub(crate) async fn json_errors(
    axum::extract::State(style): axum::extract::State<ErrorStyle>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_deliberate(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!(
            "method {method} is not allowed on this path{}",
            parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .map(|a| format!("; allowed: {a}"))
                .unwrap_or_default()
        ),
        _ if !text.is_empty() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let code = code_for(status);
    let body = match style {
        ErrorStyle::Recipient => {
            serde_json::to_vec(&crate::protocol::error::ErrorBody::new(code, message))
        }
        ErrorStyle::Admin => serde_json::to_vec(&crate::protocol::admin::AdminError {
            error_code: code.as_str().to_owned(),
            message,
        }),
    }
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    parts
        .extensions
        .insert(super::audit::ErrorCodeExt(code.as_str().to_owned()));
    let mut out = Response::from_parts(parts, axum::body::Body::from(body));
    *out.status_mut() = status;
    out.into_response()
}
