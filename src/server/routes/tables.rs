//! Table endpoints: version (GET and legacy HEAD), metadata, query.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::protocol::capabilities::{Capabilities, FILE_ID_HASH_HEADER, TABLE_VERSION_HEADER};
use crate::server::error::ApiError;
use crate::server::extract::{Caller, PublicBase, capabilities};
use crate::server::ndjson;
use crate::server::router::AppState;
use crate::service::{ChangesParams, TableRef};

type TablePath = Path<(String, String, String)>;

fn tref<'a>(share: &'a str, schema: &'a str, table: &'a str) -> TableRef<'a> {
    TableRef {
        share,
        schema,
        table,
    }
}

/// Query parameters of `/version`.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionQuery {
    #[serde(rename = "startingTimestamp")]
    starting_timestamp: Option<String>,
}

/// Query parameters of `/metadata`.
#[derive(Debug, Deserialize)]
pub(crate) struct MetadataQuery {
    version: Option<String>,
    timestamp: Option<String>,
}

/// What the streaming table endpoints read from the headers: capabilities, the `fileidhash`
/// value as sent, and the public endpoint URL for Lakeshare-signed file URLs.
fn stream_headers(headers: &HeaderMap, base: PublicBase) -> (Capabilities, Option<String>, String) {
    let id_hash = headers
        .get(FILE_ID_HASH_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    (capabilities(headers), id_hash, base.0)
}

fn version_response(version: u64) -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(TABLE_VERSION_HEADER, HeaderValue::from(version));
    r
}

/// `GET .../tables/{table}/version`
pub(crate) async fn get_table_version(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((share, schema, table)): TablePath,
    Query(q): Query<VersionQuery>,
) -> Result<Response, ApiError> {
    let v = state
        .service
        .get_table_version(
            &p,
            tref(&share, &schema, &table),
            q.starting_timestamp.as_deref(),
        )
        .await?;
    Ok(version_response(v))
}

/// `HEAD .../tables/{table}` (legacy version endpoint)
pub(crate) async fn head_table(
    State(state): State<AppState>,
    Caller(p): Caller,
    Path((share, schema, table)): TablePath,
) -> Result<Response, ApiError> {
    let v = state
        .service
        .get_table_version(&p, tref(&share, &schema, &table), None)
        .await?;
    Ok(version_response(v))
}

/// `GET .../tables/{table}/metadata`
pub(crate) async fn get_table_metadata(
    State(state): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
    Path((share, schema, table)): TablePath,
    Query(q): Query<MetadataQuery>,
) -> Result<Response, ApiError> {
    let caps = capabilities(&headers);
    let resp = state
        .service
        .get_table_metadata(
            &p,
            tref(&share, &schema, &table),
            &caps,
            q.version.as_deref(),
            q.timestamp.as_deref(),
        )
        .await?;
    Ok(ndjson::render(resp))
}

/// `POST .../tables/{table}/query`
pub(crate) async fn query_table(
    State(state): State<AppState>,
    Caller(p): Caller,
    public: PublicBase,
    headers: HeaderMap,
    Path((share, schema, table)): TablePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caps, id_hash, base) = stream_headers(&headers, public);
    let resp = state
        .service
        .query_table(
            &p,
            tref(&share, &schema, &table),
            &caps,
            id_hash.as_deref(),
            &body,
            &base,
        )
        .await?;
    Ok(ndjson::render(resp))
}

/// `GET .../tables/{table}/changes`
pub(crate) async fn query_table_changes(
    State(state): State<AppState>,
    Caller(p): Caller,
    public: PublicBase,
    headers: HeaderMap,
    Path((share, schema, table)): TablePath,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (caps, id_hash, base) = stream_headers(&headers, public);
    let resp = state
        .service
        .query_table_changes(
            &p,
            tref(&share, &schema, &table),
            &caps,
            id_hash.as_deref(),
            &ChangesParams::from_map(q),
            &base,
        )
        .await?;
    Ok(ndjson::render(resp))
}

/// `POST .../tables/{table}/queries/{queryId}`
pub(crate) async fn get_query_result(
    State(state): State<AppState>,
    Caller(p): Caller,
    public: PublicBase,
    headers: HeaderMap,
    Path((share, schema, table, query_id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caps, id_hash, base) = stream_headers(&headers, public);
    let resp = state
        .service
        .get_query_result(
            &p,
            tref(&share, &schema, &table),
            &query_id,
            &caps,
            id_hash.as_deref(),
            &body,
            &base,
        )
        .await?;
    Ok(ndjson::render(resp))
}
