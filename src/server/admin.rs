//! The admin API router (its own listener, 127.0.0.1 by default): Unity-Catalog-shaped routes
//! for tables, shares, permissions and recipients, and the Lakeshare extensions under
//! `/api/2.1/lakeshare` (policy plan/apply, recipient preview, change log), authenticated
//! with admin tokens.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::error::classify;
use crate::protocol::admin as wire;
use crate::service::{Service, ServiceError};

/// State of the admin handlers.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The application service.
    pub service: Service,
    /// Origin of the recipient listener (activation links point there).
    pub recipient_origin: String,
    /// Set only for the router the CLI runs in-process on a local store (never on a
    /// listener): every request acts as this actor without a token.
    pub local_actor: Option<String>,
    /// The audit log (every admin request is recorded when set).
    pub audit: Option<std::sync::Arc<super::audit::AuditConfig>>,
}

const UC: &str = "/api/2.1/unity-catalog";
const EXT: &str = "/api/2.1/lakeshare";

/// Every admin route (method, path).
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/2.1/unity-catalog/tables"),
    ("POST", "/api/2.1/unity-catalog/tables"),
    ("GET", "/api/2.1/unity-catalog/tables/{full_name}"),
    ("DELETE", "/api/2.1/unity-catalog/tables/{full_name}"),
    ("GET", "/api/2.1/unity-catalog/shares"),
    ("POST", "/api/2.1/unity-catalog/shares"),
    ("GET", "/api/2.1/unity-catalog/shares/{name}"),
    ("PATCH", "/api/2.1/unity-catalog/shares/{name}"),
    ("DELETE", "/api/2.1/unity-catalog/shares/{name}"),
    ("GET", "/api/2.1/unity-catalog/shares/{name}/permissions"),
    ("PATCH", "/api/2.1/unity-catalog/shares/{name}/permissions"),
    ("GET", "/api/2.1/unity-catalog/recipients"),
    ("POST", "/api/2.1/unity-catalog/recipients"),
    ("GET", "/api/2.1/unity-catalog/recipients/{name}"),
    ("PATCH", "/api/2.1/unity-catalog/recipients/{name}"),
    ("DELETE", "/api/2.1/unity-catalog/recipients/{name}"),
    (
        "POST",
        "/api/2.1/unity-catalog/recipients/{name}/rotate-token",
    ),
    (
        "GET",
        "/api/2.1/unity-catalog/recipients/{name}/share-permissions",
    ),
    ("POST", "/api/2.1/lakeshare/policy/plan"),
    ("POST", "/api/2.1/lakeshare/policy/apply"),
    ("GET", "/api/2.1/lakeshare/recipients/{name}/preview"),
    ("GET", "/api/2.1/lakeshare/changes"),
    ("GET", "/api/2.1/lakeshare/admin-tokens"),
    ("POST", "/api/2.1/lakeshare/admin-tokens"),
    ("DELETE", "/api/2.1/lakeshare/admin-tokens/{prefix}"),
];

/// An admin API error.
struct AdminApiError(ServiceError);

impl From<ServiceError> for AdminApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for AdminApiError {
    fn into_response(self) -> Response {
        let (status, code) = classify(&self.0);
        let message = match &self.0 {
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "admin API internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(wire::AdminError {
                error_code: code.as_str().to_owned(),
                message,
            }),
        )
            .into_response();
        response
            .extensions_mut()
            .insert(super::audit::ErrorCodeExt(code.as_str().to_owned()));
        response
    }
}

/// The authenticated administrator, as the actor its changes are recorded as
/// (`admin:<name>`).
struct Admin(String);

impl FromRequestParts<AdminState> for Admin {
    type Rejection = AdminApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, AdminApiError> {
        if let Some(actor) = &state.local_actor {
            if let Some(slot) = parts.extensions.get::<super::audit::AuditSlot>() {
                slot.set(actor, None);
            }
            return Ok(Self(actor.clone()));
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        let name = state.service.admin_authenticate(token.as_deref()).await?;
        if let Some(slot) = parts.extensions.get::<super::audit::AuditSlot>() {
            slot.set(&format!("admin:{name}"), None);
        }
        Ok(Self(format!("admin:{name}")))
    }
}

/// Query parameters, with malformed values answered as a Unity-style 400.
struct AdminQuery<T>(T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = AdminApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| {
                AdminApiError(ServiceError::InvalidParameter(format!(
                    "invalid query parameters: {}",
                    e.body_text()
                )))
            })
    }
}

/// Parses a JSON body with an admin-API error for malformed input.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        AdminApiError(ServiceError::InvalidParameter(format!(
            "invalid request body: {e}"
        )))
    })
}

type R = Result<Response, AdminApiError>;

fn ok<T: serde::Serialize>(v: T) -> R {
    Ok(Json(v).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct TableFilter {
    catalog_name: Option<String>,
    schema_name: Option<String>,
}

async fn list_tables(
    State(s): State<AdminState>,
    _a: Admin,
    AdminQuery(q): AdminQuery<TableFilter>,
) -> R {
    ok(s.service
        .admin_list_tables(q.catalog_name.as_deref(), q.schema_name.as_deref())
        .await?)
}

async fn create_table(State(s): State<AdminState>, a: Admin, bytes: Bytes) -> R {
    ok(s.service.admin_create_table(&a.0, &body(&bytes)?).await?)
}

async fn get_table(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    ok(s.service.admin_get_table(&name).await?)
}

async fn delete_table(State(s): State<AdminState>, a: Admin, Path(name): Path<String>) -> R {
    s.service.admin_delete_table(&a.0, &name).await?;
    ok(serde_json::json!({}))
}

async fn list_shares(State(s): State<AdminState>, _a: Admin) -> R {
    ok(s.service.admin_list_shares().await?)
}

async fn create_share(State(s): State<AdminState>, a: Admin, bytes: Bytes) -> R {
    ok(s.service.admin_create_share(&a.0, &body(&bytes)?).await?)
}

async fn get_share(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    ok(s.service.admin_get_share(&name).await?)
}

async fn update_share(
    State(s): State<AdminState>,
    a: Admin,
    Path(name): Path<String>,
    bytes: Bytes,
) -> R {
    ok(s.service
        .admin_update_share(&a.0, &name, &body(&bytes)?)
        .await?)
}

async fn delete_share(State(s): State<AdminState>, a: Admin, Path(name): Path<String>) -> R {
    s.service.admin_delete_share(&a.0, &name).await?;
    ok(serde_json::json!({}))
}

async fn get_share_permissions(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
) -> R {
    ok(s.service.admin_share_permissions(&name).await?)
}

async fn update_share_permissions(
    State(s): State<AdminState>,
    a: Admin,
    Path(name): Path<String>,
    bytes: Bytes,
) -> R {
    ok(s.service
        .admin_update_share_permissions(&a.0, &name, &body(&bytes)?)
        .await?)
}

async fn list_recipients(State(s): State<AdminState>, _a: Admin) -> R {
    ok(s.service.admin_list_recipients().await?)
}

async fn create_recipient(State(s): State<AdminState>, a: Admin, bytes: Bytes) -> R {
    ok(s.service
        .admin_create_recipient(&a.0, &body(&bytes)?, &s.recipient_origin)
        .await?)
}

async fn get_recipient(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    ok(s.service.admin_get_recipient(&name).await?)
}

async fn update_recipient(
    State(s): State<AdminState>,
    a: Admin,
    Path(name): Path<String>,
    bytes: Bytes,
) -> R {
    ok(s.service
        .admin_update_recipient(&a.0, &name, &body(&bytes)?)
        .await?)
}

async fn delete_recipient(State(s): State<AdminState>, a: Admin, Path(name): Path<String>) -> R {
    s.service.admin_delete_recipient(&a.0, &name).await?;
    ok(serde_json::json!({}))
}

async fn rotate_token(
    State(s): State<AdminState>,
    a: Admin,
    Path(name): Path<String>,
    bytes: Bytes,
) -> R {
    ok(s.service
        .admin_rotate_token(&a.0, &name, &body(&bytes)?, &s.recipient_origin)
        .await?)
}

async fn recipient_share_permissions(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
) -> R {
    ok(s.service.admin_recipient_share_permissions(&name).await?)
}

#[derive(Debug, serde::Deserialize)]
struct ApplyFlags {
    #[serde(default)]
    allow_delete: bool,
}

/// Largest policy document accepted over the API.
const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// The body is the policy YAML (the same file `lakeshare plan/apply` reads). Its size is
/// bounded before parsing, its nesting by `config` before YAML parsing, and parsing runs off
/// the async threads.
async fn policy(bytes: Bytes) -> Result<crate::catalog::DeclaredState, AdminApiError> {
    let invalid = |m: String| AdminApiError(ServiceError::InvalidParameter(m));
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(invalid(format!(
            "the policy is {} bytes, over the {MAX_POLICY_BYTES}-byte limit",
            bytes.len()
        )));
    }
    tokio::task::spawn_blocking(move || {
        let text =
            std::str::from_utf8(&bytes).map_err(|_| "the policy must be UTF-8 YAML".to_owned())?;
        crate::config::parse_policy(text)
            .map(|c| c.declared)
            .map_err(|e| format!("invalid policy: {e}"))
    })
    .await
    .map_err(|e| {
        AdminApiError(ServiceError::Internal(format!(
            "policy parsing failed: {e}"
        )))
    })?
    .map_err(invalid)
}

async fn policy_plan(State(s): State<AdminState>, a: Admin, bytes: Bytes) -> R {
    ok(s.service
        .admin_policy(&a.0, &policy(bytes).await?, false, false)
        .await?)
}

async fn policy_apply(
    State(s): State<AdminState>,
    a: Admin,
    AdminQuery(f): AdminQuery<ApplyFlags>,
    bytes: Bytes,
) -> R {
    ok(s.service
        .admin_policy(&a.0, &policy(bytes).await?, true, f.allow_delete)
        .await?)
}

#[derive(Debug, serde::Deserialize)]
struct PreviewParams {
    max_files: Option<usize>,
}

async fn preview(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
    AdminQuery(p): AdminQuery<PreviewParams>,
) -> R {
    ok(s.service
        .admin_preview(&name, p.max_files.unwrap_or(1000))
        .await?)
}

#[derive(Debug, serde::Deserialize)]
struct ChangesParams {
    limit: Option<usize>,
}

async fn changes(
    State(s): State<AdminState>,
    _a: Admin,
    AdminQuery(p): AdminQuery<ChangesParams>,
) -> R {
    ok(s.service.admin_changes(p.limit.unwrap_or(50)).await?)
}

async fn list_admin_tokens(State(s): State<AdminState>, _a: Admin) -> R {
    ok(s.service.admin_list_admin_tokens().await?)
}

async fn create_admin_token(State(s): State<AdminState>, a: Admin, bytes: Bytes) -> R {
    ok(s.service
        .admin_create_admin_token(&a.0, &body(&bytes)?)
        .await?)
}

async fn revoke_admin_token(
    State(s): State<AdminState>,
    a: Admin,
    Path(prefix): Path<String>,
) -> R {
    s.service.admin_revoke_admin_token(&a.0, &prefix).await?;
    ok(serde_json::json!({}))
}

/// `GET /metrics` (Prometheus text; the admin listener is 127.0.0.1 only, no token needed).
async fn metrics(State(s): State<AdminState>) -> Response {
    let mut r = s.service.render_metrics().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn not_found() -> Response {
    let mut r = (
        StatusCode::NOT_FOUND,
        Json(wire::AdminError {
            error_code: "RESOURCE_DOES_NOT_EXIST".to_owned(),
            message: "no such endpoint".to_owned(),
        }),
    )
        .into_response();
    r.extensions_mut().insert(super::audit::ErrorCodeExt(
        "RESOURCE_DOES_NOT_EXIST".to_owned(),
    ));
    r
}

/// Builds the admin router.
pub fn build_admin_router(state: AdminState) -> Router {
    let routed = Router::new()
        .route("/.well-known/databricks-config", get(not_found))
        .route(&format!("{UC}/tables"), get(list_tables).post(create_table))
        .route(
            &format!("{UC}/tables/{{full_name}}"),
            get(get_table).delete(delete_table),
        )
        .route(&format!("{UC}/shares"), get(list_shares).post(create_share))
        .route(
            &format!("{UC}/shares/{{name}}"),
            get(get_share).patch(update_share).delete(delete_share),
        )
        .route(
            &format!("{UC}/shares/{{name}}/permissions"),
            get(get_share_permissions).patch(update_share_permissions),
        )
        .route(
            &format!("{UC}/recipients"),
            get(list_recipients).post(create_recipient),
        )
        .route(
            &format!("{UC}/recipients/{{name}}"),
            get(get_recipient)
                .patch(update_recipient)
                .delete(delete_recipient),
        )
        .route(
            &format!("{UC}/recipients/{{name}}/rotate-token"),
            post(rotate_token),
        )
        .route(
            &format!("{UC}/recipients/{{name}}/share-permissions"),
            get(recipient_share_permissions),
        )
        .route(&format!("{EXT}/policy/plan"), post(policy_plan))
        .route(&format!("{EXT}/policy/apply"), post(policy_apply))
        .route(&format!("{EXT}/recipients/{{name}}/preview"), get(preview))
        .route(&format!("{EXT}/changes"), get(changes))
        .route(
            &format!("{EXT}/admin-tokens"),
            get(list_admin_tokens).post(create_admin_token),
        )
        .route(
            &format!("{EXT}/admin-tokens/{{prefix}}"),
            axum::routing::delete(revoke_admin_token),
        )
        .route("/metrics", get(metrics))
        .fallback(not_found);
    let audit = state.audit.clone();
    let telemetry = super::telemetry::TelemetryState {
        telemetry: state.service.telemetry(),
        routes: ADMIN_ROUTES,
        prefix: String::new(),
    };
    let routed: Router = routed.with_state(state);
    // As for the recipient router: the cross-cutting layers see the final answers.
    Router::new()
        .fallback_service(routed)
        .layer(axum::middleware::from_fn_with_state(
            super::json_errors::ErrorStyle::Admin,
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
