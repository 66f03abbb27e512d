//! `/metrics` for scrapers on other hosts (config `metricsListener`): its own listener serving
//! nothing else, behind a bearer token compared in constant time. The admin listener's
//! `/metrics` stays on 127.0.0.1 without a token.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::service::Service;

/// State of the metrics listener.
#[derive(Clone)]
pub struct MetricsState {
    /// The service whose counters are rendered.
    pub service: Service,
    /// SHA-256 of the scrapers' bearer token.
    pub token_hash: [u8; 32],
}

async fn metrics(State(s): State<MetricsState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let ok = !presented.is_empty()
        && crate::domain::token::hashes_equal(
            &crate::domain::token::hash(presented),
            &s.token_hash,
        );
    if !ok {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required for /metrics\n",
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lakeshare-metrics\""),
        );
        return r;
    }
    let mut r = s.service.render_metrics().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// The router: `GET /metrics` only.
pub fn build_metrics_router(state: MetricsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}
