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

fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// `proto` and `host` of the first element of a `Forwarded` header (RFC 7239).
fn forwarded_pair(headers: &axum::http::HeaderMap) -> (Option<String>, Option<String>) {
    let Some(first) = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
    else {
        return (None, None);
    };
    let mut proto = None;
    let mut host = None;
    for pair in first.split(';') {
        if let Some((k, v)) = pair.trim().split_once('=') {
            let v = v.trim().trim_matches('"').to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = Some(v),
                "host" => host = Some(v),
                _ => {}
            }
        }
    }
    (proto, host)
}

/// The endpoint URL recipients reach this server at (for profiles, activation links and
/// Lakeshare-signed file URLs): the configured `publicUrl` when there is one; else, from a
/// trusted proxy, the scheme and host it forwards (`Forwarded`, `X-Forwarded-Proto`,
/// `X-Forwarded-Host`); else this listener's scheme and the request's `Host`.
pub(crate) fn public_base(parts: &Parts, state: &AppState) -> String {
    if let Some(public) = &state.public_url {
        return format!("{public}{}", state.prefix);
    }
    let headers = &parts.headers;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let trusted = peer.is_some_and(|p| state.trusted_proxies.iter().any(|n| n.contains(&p)));
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    let (mut scheme, mut host) = (state.scheme.to_owned(), None);
    if trusted {
        let (fproto, fhost) = forwarded_pair(headers);
        if let Some(p) = fproto.or_else(|| first("x-forwarded-proto")) {
            let p = p.to_ascii_lowercase();
            if p == "http" || p == "https" {
                scheme = p;
            }
        }
        host = fhost
            .or_else(|| first("x-forwarded-host"))
            .filter(|h| plausible_host(h));
    }
    let host = host.or_else(|| {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| plausible_host(h))
            .map(str::to_owned)
    });
    match host {
        Some(h) => format!("{scheme}://{h}{}", state.prefix),
        None => state.bound_base.clone(),
    }
}

/// The public endpoint URL of the request, as an extractor.
pub(crate) struct PublicBase(pub(crate) String);

impl FromRequestParts<AppState> for PublicBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(public_base(parts, state)))
    }
}
