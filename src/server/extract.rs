//! Extractors: the authenticated caller and the capabilities header.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::router::AppState;
use crate::domain::model::Principal;
use crate::protocol::capabilities::{CAPABILITIES_HEADER, Capabilities};

/// The authenticated caller of a recipient route.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts);
        Ok(Self(state.service.authenticate(token.as_deref()).await?))
    }
}

/// Parsed `delta-sharing-capabilities` request header.
pub(crate) fn capabilities(parts: &axum::http::HeaderMap) -> Capabilities {
    Capabilities::parse(parts.get(CAPABILITIES_HEADER).and_then(|v| v.to_str().ok()))
}

/// The endpoint URL the client used (scheme + Host + prefix), for Lakeshare-signed URLs.
pub(crate) fn public_base(headers: &axum::http::HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
    match host {
        Some(h) => format!("{}://{}{}", state.scheme, h, state.prefix),
        None => state.bound_base.clone(),
    }
}
