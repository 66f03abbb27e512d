//! The admin API router (its own listener, 127.0.0.1 by default): Unity-Catalog-shaped routes
//! for shares, permissions and recipients, authenticated with admin tokens.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
}

/// Every admin route (method, path).
pub const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/2.1/unity-catalog/shares"),
    ("GET", "/api/2.1/unity-catalog/shares/{name}"),
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
        (
            status,
            Json(wire::AdminError {
                error_code: code.as_str().to_owned(),
                message,
            }),
        )
            .into_response()
    }
}

/// The authenticated administrator.
struct Admin(#[allow(dead_code)] String);

impl FromRequestParts<AdminState> for Admin {
    type Rejection = AdminApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, AdminApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        Ok(Self(
            state.service.admin_authenticate(token.as_deref()).await?,
        ))
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

async fn list_shares(State(s): State<AdminState>, _a: Admin) -> R {
    Ok(Json(s.service.admin_list_shares().await?).into_response())
}

async fn get_share(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    Ok(Json(s.service.admin_get_share(&name).await?).into_response())
}

async fn get_share_permissions(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
) -> R {
    Ok(Json(s.service.admin_share_permissions(&name).await?).into_response())
}

async fn update_share_permissions(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> R {
    let req: wire::UpdatePermissions = body(&bytes)?;
    Ok(Json(
        s.service
            .admin_update_share_permissions(&name, &req)
            .await?,
    )
    .into_response())
}

async fn list_recipients(State(s): State<AdminState>, _a: Admin) -> R {
    Ok(Json(s.service.admin_list_recipients().await?).into_response())
}

async fn create_recipient(State(s): State<AdminState>, _a: Admin, bytes: axum::body::Bytes) -> R {
    let req: wire::CreateRecipient = body(&bytes)?;
    let info = s
        .service
        .admin_create_recipient(&req, &s.recipient_origin)
        .await?;
    Ok(Json(info).into_response())
}

async fn get_recipient(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    Ok(Json(s.service.admin_get_recipient(&name).await?).into_response())
}

async fn update_recipient(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> R {
    let req: wire::UpdateRecipient = body(&bytes)?;
    Ok(Json(s.service.admin_update_recipient(&name, &req).await?).into_response())
}

async fn delete_recipient(State(s): State<AdminState>, _a: Admin, Path(name): Path<String>) -> R {
    s.service.admin_delete_recipient(&name).await?;
    Ok(Json(serde_json::json!({})).into_response())
}

async fn rotate_token(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
    bytes: axum::body::Bytes,
) -> R {
    let req: wire::RotateToken = body(&bytes)?;
    let info = s
        .service
        .admin_rotate_token(&name, &req, &s.recipient_origin)
        .await?;
    Ok(Json(info).into_response())
}

async fn recipient_share_permissions(
    State(s): State<AdminState>,
    _a: Admin,
    Path(name): Path<String>,
) -> R {
    Ok(Json(s.service.admin_recipient_share_permissions(&name).await?).into_response())
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(wire::AdminError {
            error_code: "RESOURCE_DOES_NOT_EXIST".to_owned(),
            message: "no such endpoint".to_owned(),
        }),
    )
        .into_response()
}

/// Builds the admin router.
pub fn build_admin_router(state: AdminState) -> Router {
    let p = "/api/2.1/unity-catalog";
    Router::new()
        .route("/.well-known/databricks-config", get(not_found))
        .route(&format!("{p}/shares"), get(list_shares))
        .route(&format!("{p}/shares/{{name}}"), get(get_share))
        .route(
            &format!("{p}/shares/{{name}}/permissions"),
            get(get_share_permissions).patch(update_share_permissions),
        )
        .route(
            &format!("{p}/recipients"),
            get(list_recipients).post(create_recipient),
        )
        .route(
            &format!("{p}/recipients/{{name}}"),
            get(get_recipient)
                .patch(update_recipient)
                .delete(delete_recipient),
        )
        .route(
            &format!("{p}/recipients/{{name}}/rotate-token"),
            axum::routing::post(rotate_token),
        )
        .route(
            &format!("{p}/recipients/{{name}}/share-permissions"),
            get(recipient_share_permissions),
        )
        .fallback(not_found)
        .with_state(state)
}
