//! Request counts and latencies per route template (see `service::telemetry`), around both
//! routers; probes and scrapes are not counted.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::service::telemetry::Telemetry;

/// What the middleware needs.
#[derive(Debug, Clone)]
pub(crate) struct TelemetryState {
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) routes: &'static [(&'static str, &'static str)],
    pub(crate) prefix: String,
}

/// The middleware.
pub(crate) async fn observe_requests(
    State(st): State<TelemetryState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if matches!(
        path.as_str(),
        "/healthz" | "/readyz" | "/_lakeshare/metrics" | "/metrics"
    ) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = super::audit::below_prefix(&st.prefix, &path)
        .and_then(|inner| super::audit::route_of(st.routes, &method, inner))
        .or_else(|| super::audit::route_of(super::PUBLIC_ROUTES, &method, &path))
        .map_or_else(|| "unmatched".to_owned(), |(r, _)| r);
    st.telemetry.observe(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
