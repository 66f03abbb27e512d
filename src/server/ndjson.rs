//! Streamed NDJSON responses.
//!
//! Lines are written as the service produces them. If the service fails after the first
//! line, the body stream ends with an error, which makes hyper abort the chunked transfer
//! (no terminating chunk), so the client sees a failed download rather than partial data.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::protocol::capabilities::{
    CAPABILITIES_HEADER, FILE_ID_HASH_HEADER, TABLE_VERSION_HEADER, response_capabilities,
};
use crate::service::NdjsonResponse;

/// Renders a streamed NDJSON response with its protocol headers.
pub(crate) fn render(resp: NdjsonResponse) -> Response {
    let stream = resp.lines.map(|item| {
        item.map_err(|e| {
            tracing::error!(error = %e, "query stream failed after the response started; aborting");
            std::io::Error::other(e.to_string())
        })
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
    );
    headers.insert(TABLE_VERSION_HEADER, HeaderValue::from(resp.version));
    if let Ok(v) = HeaderValue::from_str(&response_capabilities(
        resp.format,
        resp.end_stream_capability,
        resp.async_query,
    )) {
        headers.insert(CAPABILITIES_HEADER, v);
    }
    if let Some(hash) = resp.file_id_hash {
        headers.insert(FILE_ID_HASH_HEADER, HeaderValue::from_static(hash.as_str()));
    }
    response
}
