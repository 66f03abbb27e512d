//! Every route, in one place.

use axum::Router;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post};

use super::error::ApiError;
use super::routes::{activation, credentials, files, ops, shares, tables};
use crate::service::{Service, ServiceError};

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The application service.
    pub service: Service,
    /// Endpoint prefix, e.g. `/delta-sharing` (no trailing slash; may be empty).
    pub prefix: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Endpoint URL as bound (fallback when a request has no usable Host header).
    pub bound_base: String,
    /// Proxies whose `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
    /// `Forwarded` headers are believed (empty = none, the default).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `publicUrl`: the external URL of the server root (no trailing slash), used for
    /// profiles, activation links and file URLs whatever a request's headers say.
    pub public_url: Option<String>,
    /// The audit log (every request is recorded when set).
    pub audit: Option<std::sync::Arc<super::audit::AuditConfig>>,
}

/// The recipient API (relative to the prefix): method and path, as in
/// `protocol-spec/openapi.yaml`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/shares"),
    ("GET", "/shares/{share}"),
    ("GET", "/shares/{share}/schemas"),
    ("GET", "/shares/{share}/schemas/{schema}/tables"),
    ("GET", "/shares/{share}/all-tables"),
    ("HEAD", "/shares/{share}/schemas/{schema}/tables/{table}"),
    (
        "GET",
        "/shares/{share}/schemas/{schema}/tables/{table}/version",
    ),
    (
        "GET",
        "/shares/{share}/schemas/{schema}/tables/{table}/metadata",
    ),
    (
        "POST",
        "/shares/{share}/schemas/{schema}/tables/{table}/query",
    ),
    (
        "GET",
        "/shares/{share}/schemas/{schema}/tables/{table}/changes",
    ),
    (
        "POST",
        "/shares/{share}/schemas/{schema}/tables/{table}/queries/{queryId}",
    ),
    (
        "POST",
        "/shares/{share}/schemas/{schema}/tables/{table}/temporary-table-credentials",
    ),
    ("GET", "/files/{file}/{name}"),
    ("HEAD", "/files/{file}/{name}"),
];

/// Routes outside the endpoint prefix that need no bearer token (their path carries the
/// credential), as in `protocol-spec/admin-openapi.yaml`.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    (
        "GET",
        "/api/2.1/unity-catalog/public/data_sharing_activation_info/{code}",
    ),
    (
        "GET",
        "/api/2.1/unity-catalog/public/data_sharing_activation/{code}",
    ),
    (
        "HEAD",
        "/api/2.1/unity-catalog/public/data_sharing_activation/{code}",
    ),
    (
        "POST",
        "/api/2.1/unity-catalog/public/data_sharing_activation/{code}",
    ),
];

async fn not_found(uri: Uri) -> Response {
    ApiError(ServiceError::NotFound(format!(
        "no such endpoint: {}",
        uri.path()
    )))
    .into_response()
}

/// Builds the router for `state`.
pub fn build_router(state: AppState) -> Router {
    let api = Router::new()
        .route("/shares", get(shares::list_shares))
        .route("/shares/{share}", get(shares::get_share))
        .route("/shares/{share}/schemas", get(shares::list_schemas))
        .route(
            "/shares/{share}/schemas/{schema}/tables",
            get(shares::list_tables),
        )
        .route("/shares/{share}/all-tables", get(shares::list_all_tables))
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}",
            head(tables::head_table),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/version",
            get(tables::get_table_version),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/metadata",
            get(tables::get_table_metadata),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/query",
            post(tables::query_table),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/changes",
            get(tables::query_table_changes),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/queries/{queryId}",
            post(tables::get_query_result),
        )
        .route(
            "/shares/{share}/schemas/{schema}/tables/{table}/temporary-table-credentials",
            post(credentials::temporary_table_credentials),
        )
        .route(
            "/files/{file}/{name}",
            get(files::get_file).head(files::get_file),
        );
    let root = Router::new()
        .route("/_lakeshare/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route(
            "/api/2.1/unity-catalog/public/data_sharing_activation_info/{code}",
            get(activation::get_activation_info),
        )
        .route(
            "/api/2.1/unity-catalog/public/data_sharing_activation/{code}",
            get(activation::retrieve_token)
                .head(activation::retrieve_token)
                .post(activation::download_profile),
        );
    let app = if state.prefix.is_empty() {
        root.merge(api)
    } else {
        root.nest(&state.prefix, api)
    };
    let audit = state.audit.clone();
    let telemetry = super::telemetry::TelemetryState {
        telemetry: state.service.telemetry(),
        routes: ROUTES,
        prefix: state.prefix.clone(),
    };
    let routed: Router = app
        .fallback(not_found)
        .layer(axum::middleware::from_fn(read_body_first))
        .with_state(state);
    // The cross-cutting layers wrap the *whole* router (as its fallback service), so that they
    // see answers as the client gets them, `Allow` of a 405 included: axum adds it outside
    // per-route layers.
    Router::new()
        .fallback_service(routed)
        .layer(axum::middleware::from_fn_with_state(
            super::json_errors::ErrorStyle::Recipient,
            super::json_errors::json_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            telemetry,
            super::telemetry::observe_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            audit,
            super::audit::audit_requests,
        ))
}

/// Largest request body accepted (query bodies are small; hints are limited to 1 MiB).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Reads the whole request body before routing, so that a request refused early (401/403
/// before its body was looked at) leaves the connection clean for keep-alive reuse.
async fn read_body_first(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return super::error::body_refusal(&e, MAX_BODY_BYTES, false),
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}
