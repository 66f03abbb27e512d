//! Extractors: the authenticated caller and the capabilities header.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::router::AppState;
use crate::domain::model::Principal;
use crate::protocol::capabilities::{CAPABILITIES_HEADER, Capabilities};

/// The authenticated caller of a recipient route.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

/// The bearer token. Several `Authorization` headers are refused: which one counts would be
/// up to each proxy and server on the way.
fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
    let mut all = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(ApiError(crate::service::ServiceError::Unauthenticated(
            "the request has more than one Authorization header: send exactly one \
             'Authorization: Bearer <token>'"
                .to_owned(),
        )));
    }
    let Ok(value) = value.to_str() else {
        return Ok(None);
    };
    Ok(value.trim().split_once(' ').and_then(|(scheme, token)| {
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let ip = client_ip(parts, &state.trusted_proxies);
        let (identity, result) = state.service.authenticate(token.as_deref(), ip).await;
        // Refusals are attributed too (a revoked partner who keeps trying shows up).
        if let (Some(who), Some(slot)) =
            (identity, parts.extensions.get::<super::audit::AuditSlot>())
        {
            slot.set(&who.recipient_name, Some(&who.token_prefix));
        }
        Ok(Self(result?))
    }
}

/// The caller's address: the TCP peer, or — only when the peer is a configured trusted proxy —
/// the right-most `X-Forwarded-For` address that is not itself a trusted proxy.
pub(crate) fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if trusted.is_empty() || !trusted.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(ip)))
        .or(Some(peer))
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
