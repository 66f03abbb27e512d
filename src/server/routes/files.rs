//! The signed file endpoint for local tables (GET with Range, HEAD).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::error::ApiError;
use crate::server::router::AppState;
use crate::service::FileRequest;

/// `GET|HEAD /files/{file}/{name}`
pub(crate) async fn get_file(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((file, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut q: HashMap<String, String> = HashMap::new();
    let mut repeated = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if q.insert(k.to_string(), v.into_owned()).is_some() {
            repeated.push(k.into_owned());
        }
    }
    let req = FileRequest {
        file,
        name,
        table: q.remove("t"),
        recipient: q.remove("r"),
        expires: q.remove("exp"),
        key_id: q.remove("kid"),
        signature: q.remove("sig"),
        marker: q.remove("sp"),
        unexpected: q.into_keys().chain(repeated).collect(),
        range: headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        head: method == Method::HEAD,
    };
    let body = state.service.get_file(&req).await?;
    let status = if body.range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (status, Body::from_stream(body.stream)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(body.content_length),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Some((start, end)) = body.range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", body.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}
