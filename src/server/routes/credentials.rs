//! `POST .../tables/{table}/temporary-table-credentials` (directory access).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::protocol::credentials::TemporaryCredentialsRequest;
use crate::server::error::ApiError;
use crate::server::extract::Caller;
use crate::server::router::AppState;
use crate::service::ServiceError;

/// Issues temporary credentials for the table's directory (one JSON object).
pub(crate) async fn temporary_table_credentials(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((share, schema, table)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: TemporaryCredentialsRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TemporaryCredentialsRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError(ServiceError::InvalidParameter(format!(
                "invalid request body: {e}; accepted: {{}} or {{\"location\": \"<table location>\"}}"
            )))
        })?
    };
    let out = state
        .service
        .temporary_table_credentials(&p, &share, &schema, &table, &req)
        .await?;
    Ok(axum::Json(out).into_response())
}
