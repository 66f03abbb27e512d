//! Public activation endpoints (Unity Catalog paths, so the Databricks SDK's
//! `recipient_activation` calls work). No bearer token: the code in the path is the credential.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::server::error::ApiError;
use crate::server::extract::public_base;
use crate::server::router::AppState;

/// `GET /api/2.1/unity-catalog/public/data_sharing_activation_info/{code}`
pub(crate) async fn get_activation_info(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.activation_info(&code).await?).into_response())
}

/// `GET /api/2.1/unity-catalog/public/data_sharing_activation/{code}`: the profile, once.
pub(crate) async fn retrieve_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let endpoint = public_base(&headers, &state);
    let mut response = Json(state.service.activate(&code, &endpoint).await?).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
