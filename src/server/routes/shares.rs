//! Listing endpoints: shares, schemas, tables, all-tables.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::server::error::ApiError;
use crate::server::extract::Caller;
use crate::server::router::AppState;
use crate::service::ListParams;

/// `maxResults` / `pageToken` query parameters.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "maxResults")]
    max_results: Option<String>,
    #[serde(rename = "pageToken")]
    page_token: Option<String>,
}

impl From<ListQuery> for ListParams {
    fn from(q: ListQuery) -> Self {
        Self {
            max_results: q.max_results,
            page_token: q.page_token,
        }
    }
}

/// `GET /shares`
pub(crate) async fn list_shares(
    State(state): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.list_shares(&p, &q.into()).await?).into_response())
}

/// `GET /shares/{share}`
pub(crate) async fn get_share(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(share): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.get_share(&p, &share).await?).into_response())
}

/// `GET /shares/{share}/schemas`
pub(crate) async fn list_schemas(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(share): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.list_schemas(&p, &share, &q.into()).await?).into_response())
}

/// `GET /shares/{share}/schemas/{schema}/tables`
pub(crate) async fn list_tables(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((share, schema)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = state
        .service
        .list_tables(&p, &share, Some(&schema), &q.into())
        .await?;
    Ok(Json(page).into_response())
}

/// `GET /shares/{share}/all-tables`
pub(crate) async fn list_all_tables(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path(share): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = state
        .service
        .list_tables(&p, &share, None, &q.into())
        .await?;
    Ok(Json(page).into_response())
}
