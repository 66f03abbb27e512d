//! Public activation endpoints (Unity Catalog paths, so the Databricks SDK's
//! `recipient_activation` calls work). No bearer token: the code in the path is the credential.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::activation_page;
use crate::server::error::ApiError;
use crate::server::extract::PublicBase;
use crate::server::router::AppState;
use crate::service::ServiceError;

/// `GET /api/2.1/unity-catalog/public/data_sharing_activation_info/{code}`
pub(crate) async fn get_activation_info(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.activation_info(&code).await?).into_response())
}

/// Whether a request asks for the profile as JSON (the Databricks SDK's `retrieve_token`
/// sends `Accept: application/json`). Browsers, previews and link scanners do not: they get
/// the landing page, which redeems nothing.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    accept.contains("application/json") && !accept.contains("text/html")
}

/// `GET|HEAD /api/2.1/unity-catalog/public/data_sharing_activation/{code}`: the profile, once,
/// for `Accept: application/json`; the landing page for everyone else. HEAD never redeems.
pub(crate) async fn retrieve_token(
    State(state): State<AppState>,
    method: Method,
    PublicBase(endpoint): PublicBase,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    if method == Method::HEAD || !wants_json(&headers) {
        return Ok(match state.service.activation_landing(&code).await {
            Ok(l) => activation_page::landing(&l, &endpoint),
            Err(ServiceError::NotFound(_)) => activation_page::used(),
            Err(e) => return Err(ApiError(e)),
        });
    }
    let (profile, _) = state.service.activate(&code, &endpoint).await?;
    let mut response = Json(profile).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /api/2.1/unity-catalog/public/data_sharing_activation/{code}`: the landing page's
/// button (and `curl -X POST`): redeems the link and answers the profile as a file download.
pub(crate) async fn download_profile(
    State(state): State<AppState>,
    PublicBase(endpoint): PublicBase,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let (profile, recipient) = match state.service.activate(&code, &endpoint).await {
        Ok(p) => p,
        Err(ServiceError::NotFound(_)) if !wants_json(&headers) => {
            return Ok(activation_page::used());
        }
        Err(e) => return Err(ApiError(e)),
    };
    let mut response = Json(profile).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Names are checked (no quotes, slashes or controls): safe in the header.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{recipient}.share\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
