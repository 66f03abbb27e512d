//! Asynchronous queries: submission (`asyncquery=true` on `/query`) and polling
//! (`POST .../queries/{queryId}`).
//!
//! Submission validates the request and pins the table version at once (so errors are
//! synchronous), registers the query in the [`AsyncQueryStore`] (deduplicated per recipient and
//! idempotency key, bounded per recipient), and runs the expensive part — the log replay that
//! lists the files — in the background. A poll answers `pending` until then, and afterwards
//! serves the normal result (paginated on request) at the pinned version.

use std::sync::atomic::Ordering;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::query::{Mode, NdjsonResponse, validate};
use super::resolve::{TableRef, VersionSpec};
use super::{Service, ServiceError, format};
use crate::domain::async_query::{AsyncQuery, AsyncStatus, Submission};
use crate::domain::model::Principal;
use crate::domain::policy::Authorized;
use crate::protocol::actions::{QueryStatus, QueryStatusLine};
use crate::protocol::capabilities::{Capabilities, FileIdHash};
use crate::protocol::request::QueryRequest;

/// Body of a poll request (camelCase as the Spark client sends it; snake_case accepted).
#[derive(Debug, Default, Deserialize)]
struct PollBody {
    #[serde(alias = "query_id", rename = "queryId")]
    _query_id: Option<Value>,
    #[serde(alias = "max_files", rename = "maxFiles")]
    max_files: Option<Value>,
    #[serde(alias = "page_token", rename = "pageToken")]
    page_token: Option<Value>,
}

fn pending_line(
    id: &str,
    status: &str,
    error: Option<String>,
) -> Result<bytes::Bytes, ServiceError> {
    format::ndjson_line(&QueryStatusLine {
        query_status: QueryStatus {
            query_id: id.to_owned(),
            status: status.to_owned(),
            error_message: error,
        },
    })
}

impl Service {
    /// Registers an async query (called by `query_table` when the client sent
    /// `asyncquery=true`).
    pub(crate) async fn submit_async_query(
        &self,
        auth: Authorized,
        caps: &Capabilities,
        id_hash: Option<FileIdHash>,
        request: QueryRequest,
        mode: Mode,
    ) -> Result<NdjsonResponse, ServiceError> {
        let key = request
            .idempotency_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ServiceError::InvalidParameter(
                    "idempotency_key is required for async query.".into(),
                )
            })?;
        if request.max_files.is_some() || request.page_token.is_some() {
            return Err(ServiceError::InvalidParameter(
                "maxFiles and pageToken belong in the poll request of an async query.".into(),
            ));
        }
        // Validate and pin the version now, so that errors are answered synchronously.
        let (version, spec) = match &mode {
            Mode::Snapshot(spec) => {
                let resolved = self.resolve(&auth, spec.clone()).await?;
                format::negotiate(caps, &resolved.info, auth.table())?;
                (resolved.snapshot.version(), Some(resolved.snapshot))
            }
            Mode::Stream { start, .. } => {
                let resolved = self
                    .resolve(&auth, VersionSpec::Pinned((*start).max(0) as u64))
                    .await;
                let resolved = resolved?;
                format::negotiate(caps, &resolved.info, auth.table())?;
                (resolved.snapshot.version(), None)
            }
        };
        let settings = &self.inner.settings;
        let now = self.now_ms();
        let body = serde_json::to_vec(&request_to_json(&request))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let query = AsyncQuery {
            id: uuid::Uuid::new_v4().simple().to_string(),
            recipient_id: auth.principal().recipient_id.clone(),
            table_id: auth.table().id.clone(),
            key,
            body,
            version,
            status: AsyncStatus::Pending,
            submitted_at_ms: now,
            finished_at_ms: None,
        };
        let submission = self
            .inner
            .async_store
            .submit(
                query,
                settings.async_max_concurrent_per_recipient,
                settings.async_result_ttl_ms,
            )
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let query = match submission {
            Submission::OverLimit => {
                return Err(ServiceError::TooManyRequests {
                    message: format!(
                        "too many async queries running for this recipient (limit {}); retry \
                         later",
                        settings.async_max_concurrent_per_recipient
                    ),
                    retry_after_s: 1,
                });
            }
            Submission::Existing(q) => q,
            Submission::Started(q) => {
                self.inner.async_started.fetch_add(1, Ordering::Relaxed);
                let service = self.clone();
                let id = q.id.clone();
                let name = auth.table().qualified_name();
                let delay = settings.async_test_delay_ms;
                service.inner.async_running.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if delay > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    }
                    let outcome = match spec {
                        Some(snapshot) => {
                            service
                                .blocking(move |reader| {
                                    reader
                                        .files(&snapshot)
                                        .map(|_| ())
                                        .map_err(|e| ServiceError::from_delta(e, &name))
                                })
                                .await
                        }
                        None => Ok(()),
                    };
                    let status = match outcome {
                        Ok(()) => AsyncStatus::Done,
                        Err(e) => AsyncStatus::Failed(e.to_string()),
                    };
                    if let Err(e) = service
                        .inner
                        .async_store
                        .finish(&id, status, service.now_ms())
                        .await
                    {
                        tracing::error!(error = %e, query = %id, "cannot record an async result");
                    }
                    service.inner.async_running.fetch_sub(1, Ordering::Relaxed);
                });
                q
            }
        };
        Ok(NdjsonResponse {
            version: query.version,
            format: caps
                .response_formats
                .first()
                .copied()
                .unwrap_or(crate::protocol::capabilities::ResponseFormat::Parquet),
            end_stream_capability: false,
            async_query: true,
            file_id_hash: id_hash,
            lines: futures::stream::iter([pending_line(&query.id, "pending", None)]).boxed(),
        })
    }

    /// `POST .../queries/{queryId}`: the status, or the result once the query finished.
    #[allow(clippy::too_many_arguments)]
    pub async fn get_query_result(
        &self,
        principal: &Principal,
        t: TableRef<'_>,
        query_id: &str,
        caps: &Capabilities,
        file_id_hash: Option<&str>,
        body: &[u8],
        public_base: &str,
    ) -> Result<NdjsonResponse, ServiceError> {
        let auth = self
            .authorize(principal, t.share, t.schema, t.table)
            .await?;
        let id_hash = file_id_hash
            .map(FileIdHash::parse)
            .transpose()
            .map_err(ServiceError::InvalidParameter)?;
        let poll: PollBody = if body.iter().all(u8::is_ascii_whitespace) {
            PollBody::default()
        } else {
            serde_json::from_slice(body).map_err(|e| {
                ServiceError::Malformed(format!("the request body is not a valid JSON object: {e}"))
            })?
        };
        let settings = &self.inner.settings;
        let now = self.now_ms();
        let not_found = || ServiceError::NotFound(format!("query '{query_id}' not found"));
        let query = self
            .inner
            .async_store
            .get(query_id, now, settings.async_result_ttl_ms)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
            .filter(|q| q.recipient_id == auth.principal().recipient_id)
            .filter(|q| q.table_id == auth.table().id)
            .ok_or_else(not_found)?;
        let status_response = |status: &str, error: Option<String>| {
            Ok(NdjsonResponse {
                version: query.version,
                format: crate::protocol::capabilities::ResponseFormat::Parquet,
                end_stream_capability: false,
                async_query: true,
                file_id_hash: id_hash,
                lines: futures::stream::iter([pending_line(&query.id, status, error)]).boxed(),
            })
        };
        match &query.status {
            AsyncStatus::Pending => status_response("pending", None),
            AsyncStatus::Failed(msg) => status_response("failed", Some(msg.clone())),
            AsyncStatus::Done => {
                let mut request =
                    QueryRequest::from_json(&query.body).map_err(ServiceError::Internal)?;
                request.idempotency_key = None;
                request.max_files = match poll.max_files {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().ok_or_else(|| {
                        ServiceError::Malformed(format!(
                            "'maxFiles' must be a whole number, got {v}"
                        ))
                    })?),
                };
                request.page_token = match poll.page_token {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s),
                    Some(v) => {
                        return Err(ServiceError::Malformed(format!(
                            "'pageToken' must be a string, got {v}"
                        )));
                    }
                };
                let mode = validate(&request)?;
                let mut plain = caps.clone();
                plain.async_query = false;
                self.run_query(
                    auth,
                    &plain,
                    id_hash,
                    &request,
                    mode,
                    public_base,
                    Some(query.version),
                )
                .await
            }
        }
    }
}

/// Re-serializes a validated request (the async store keeps request bodies).
fn request_to_json(q: &QueryRequest) -> Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put("predicateHints", serde_json::json!(q.predicate_hints));
    put(
        "jsonPredicateHints",
        serde_json::json!(q.json_predicate_hints),
    );
    put("limitHint", serde_json::json!(q.limit_hint));
    put("version", serde_json::json!(q.version));
    put("timestamp", serde_json::json!(q.timestamp));
    put("startingVersion", serde_json::json!(q.starting_version));
    put("endingVersion", serde_json::json!(q.ending_version));
    put(
        "includeHistoricalProtocol",
        serde_json::json!(q.include_historical_protocol),
    );
    Value::Object(m)
}
