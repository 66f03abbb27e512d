//! query_table: snapshot reads (latest, `version`, `timestamp`), `startingVersion` reads,
//! pagination, refresh tokens and end-stream actions. Async submission is in `async_query`.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::continuation::{PageState, RefreshState, open_page, open_refresh, params_hash};
use super::emit::{ChangeItem, EmitOptions, Emitter, Paging, Selection, Source};
use super::resolve::{TableRef, VersionSpec};
use super::{Service, ServiceError, format};
use crate::domain::model::Principal;
use crate::domain::policy::Authorized;
use crate::hints::JsonPredicate;
use crate::protocol::capabilities::{Capabilities, FileIdHash, ResponseFormat};
use crate::protocol::request::QueryRequest;

/// A streamed NDJSON response and the headers that describe it.
pub struct NdjsonResponse {
    /// Value of `Delta-Table-Version`.
    pub version: u64,
    /// Format used (for the capabilities header).
    pub format: ResponseFormat,
    /// The body ends with an `endStreamAction` because the client asked for it
    /// (`includeendstreamaction=true` echoed in the capabilities header).
    pub end_stream_capability: bool,
    /// An async query was accepted (`asyncquery=true` echoed).
    pub async_query: bool,
    /// `fileidhash` to echo, if the client sent one.
    pub file_id_hash: Option<FileIdHash>,
    /// The lines; an `Err` after the first line aborts the body.
    pub lines: BoxStream<'static, Result<bytes::Bytes, ServiceError>>,
}

impl std::fmt::Debug for NdjsonResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonResponse")
            .field("version", &self.version)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl NdjsonResponse {
    /// A response made of lines already built.
    pub(crate) fn fixed(
        version: u64,
        format: ResponseFormat,
        file_id_hash: Option<FileIdHash>,
        lines: Vec<bytes::Bytes>,
    ) -> Self {
        Self {
            version,
            format,
            end_stream_capability: false,
            async_query: false,
            file_id_hash,
            lines: futures::stream::iter(lines.into_iter().map(Ok)).boxed(),
        }
    }
}

/// What a query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One snapshot.
    Snapshot(VersionSpec),
    /// Data-changing file actions of `start..=end` (end defaults to the latest version).
    Stream { start: i64, end: Option<i64> },
}

fn bad(msg: &str) -> ServiceError {
    ServiceError::InvalidParameter(msg.to_owned())
}

/// Validates a query body and derives its mode.
pub(crate) fn validate(q: &QueryRequest) -> Result<Mode, ServiceError> {
    let set = [
        q.version.is_some(),
        q.timestamp.is_some(),
        q.starting_version.is_some(),
    ];
    if set.iter().filter(|b| **b).count() > 1 {
        return Err(bad(
            "Please only provide one of: version,timestamp,startingVersion",
        ));
    }
    let specific = set.iter().any(|b| *b);
    if q.max_files.is_some_and(|m| m <= 0) {
        return Err(bad("maxFiles must be positive."));
    }
    if q.limit_hint.is_some_and(|l| l < 0) {
        return Err(bad("limitHint cannot be negative."));
    }
    if q.include_refresh_token == Some(true) {
        if specific {
            return Err(bad(
                "includeRefreshToken cannot be used when querying a specific version.",
            ));
        }
        if q.page_token.is_some() {
            return Err(bad(
                "includeRefreshToken must be used in the first page request.",
            ));
        }
    }
    if q.refresh_token.is_some() {
        if specific {
            return Err(bad(
                "refreshToken cannot be used when querying a specific version.",
            ));
        }
        if q.page_token.is_some() {
            return Err(bad("refreshToken must be used in the first page request."));
        }
    }
    if q.ending_version.is_some() && q.starting_version.is_none() {
        return Err(bad(
            "endingVersion can only be used together with startingVersion.",
        ));
    }
    if let Some(start) = q.starting_version {
        if start < 0 {
            return Err(bad("startingVersion cannot be negative."));
        }
        if let Some(end) = q.ending_version
            && start > end
        {
            return Err(ServiceError::InvalidParameter(format!(
                "startingVersion({start}) must be smaller than or equal to endingVersion({end})."
            )));
        }
        return Ok(Mode::Stream {
            start,
            end: q.ending_version,
        });
    }
    Ok(Mode::Snapshot(match (&q.version, &q.timestamp) {
        (Some(v), _) => VersionSpec::Version(*v),
        (_, Some(t)) => VersionSpec::Timestamp(t.clone()),
        _ => VersionSpec::Latest,
    }))
}

/// Whether the response must end with an `endStreamAction` (the Python connector breaks on
/// one it did not ask for).
pub(crate) fn wants_end_stream(q: &QueryRequest, caps: &Capabilities) -> bool {
    caps.include_end_stream_action
        || q.max_files.is_some()
        || q.page_token.is_some()
        || q.include_refresh_token == Some(true)
        || q.refresh_token.is_some()
}

/// Parameters that may not change between pages.
fn query_params_hash(q: &QueryRequest, mode: &Mode, format: ResponseFormat) -> String {
    let opt = |v: Option<i64>| v.map_or_else(String::new, |v| v.to_string());
    params_hash(&[
        "query",
        &format!("{mode:?}"),
        format.as_str(),
        &opt(q.version),
        q.timestamp.as_deref().unwrap_or(""),
        &opt(q.starting_version),
        &opt(q.ending_version),
        &q.predicate_hints.join("\u{1}"),
        q.json_predicate_hints.as_deref().unwrap_or(""),
        &opt(q.limit_hint),
        &format!("{:?}", q.include_historical_protocol),
    ])
}

impl Service {
    /// `POST .../query`. `public_base` is the endpoint URL clients reach this server at (for
    /// Lakeshare-served file URLs).
    pub async fn query_table(
        &self,
        principal: &Principal,
        t: TableRef<'_>,
        caps: &Capabilities,
        file_id_hash: Option<&str>,
        body: &[u8],
        public_base: &str,
    ) -> Result<NdjsonResponse, ServiceError> {
        let id_hash = file_id_hash
            .map(FileIdHash::parse)
            .transpose()
            .map_err(ServiceError::InvalidParameter)?;
        let request = QueryRequest::from_json(body).map_err(ServiceError::Malformed)?;
        let mode = validate(&request)?;
        let auth = self
            .authorize(principal, t.share, t.schema, t.table)
            .await?;
        if caps.async_query {
            return self
                .submit_async_query(auth, caps, id_hash, request, mode)
                .await;
        }
        self.run_query(auth, caps, id_hash, &request, mode, public_base, None)
            .await
    }

    /// Runs a validated, authorized query. `pinned` forces the snapshot version (async results).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_query(
        &self,
        auth: Authorized,
        caps: &Capabilities,
        id_hash: Option<FileIdHash>,
        request: &QueryRequest,
        mode: Mode,
        public_base: &str,
        pinned: Option<u64>,
    ) -> Result<NdjsonResponse, ServiceError> {
        let settings = &self.inner.settings;
        let now = self.now_ms();
        let grace = settings.url_ttl_ms;
        let table_id = auth.table().id.clone();
        let recipient = auth.principal().recipient_id.clone();
        // A refresh token pins the latest-snapshot query to the version it was issued at.
        let refresh = request
            .refresh_token
            .as_deref()
            .map(|tok| open_refresh(&self.inner.keyring, tok, &recipient, &table_id, now, grace))
            .transpose()?;
        // Resolve the version first: the format (and so the page-token parameters) depend on it.
        let (resolved, stream_range) = match &mode {
            Mode::Snapshot(spec) => {
                let spec = match (pinned, &refresh) {
                    // An async result of a time-travel query keeps its version stamps.
                    (Some(v), _) if *spec != VersionSpec::Latest => VersionSpec::Version(v as i64),
                    (Some(v), _) => VersionSpec::Pinned(v),
                    (None, Some(r)) => VersionSpec::Pinned(r.v),
                    _ => spec.clone(),
                };
                (self.resolve(&auth, spec).await?, None)
            }
            Mode::Stream { start, end } => {
                let (start, end) = self.stream_range(&auth, *start, *end).await?;
                (
                    self.resolve(&auth, VersionSpec::Pinned(start)).await?,
                    Some((start, end)),
                )
            }
        };
        let format = format::negotiate(caps, &resolved.info, auth.table())?;
        let params = query_params_hash(request, &mode, format);
        let page = request
            .page_token
            .as_deref()
            .map(|tok| {
                open_page(
                    &self.inner.keyring,
                    tok,
                    &recipient,
                    &table_id,
                    &params,
                    now,
                    grace,
                )
            })
            .transpose()?;
        // Pages after the first continue at the version pinned in the token.
        let resolved = match (&page, &mode) {
            (Some(p), Mode::Snapshot(_)) if p.v != resolved.snapshot.version() => {
                self.resolve(&auth, VersionSpec::Pinned(p.v)).await?
            }
            _ => resolved,
        };
        let stream_range = match (&page, stream_range) {
            (Some(p), Some(_)) => Some((p.v, p.e.unwrap_or(p.v))),
            (_, r) => r,
        };
        let version = resolved.snapshot.version();
        let meta_version = stream_range.map(|(s, _)| s as i64);
        let historical_protocol = request.include_historical_protocol == Some(true)
            && format == ResponseFormat::Delta
            && stream_range.is_some();
        let head = format::head_lines(
            format,
            &resolved.info,
            auth.table(),
            meta_version,
            historical_protocol.then_some(version as i64),
        )?;
        let source = match stream_range {
            None => {
                let snapshot = resolved.snapshot.clone();
                let name = auth.table().qualified_name();
                let files = self
                    .blocking(move |reader| {
                        reader
                            .files(&snapshot)
                            .map_err(|e| ServiceError::from_delta(e, &name))
                    })
                    .await?;
                Source::Snapshot {
                    files,
                    stamp: resolved
                        .time_travel
                        .then_some((version as i64, resolved.time_travel_timestamp)),
                }
            }
            Some((start, end)) => {
                self.stream_source(&auth, start, end, historical_protocol)
                    .await?
            }
        };
        let is_snapshot = matches!(source, Source::Snapshot { .. });
        let end_stream = wants_end_stream(request, caps);
        let refresh_token = if matches!(mode, Mode::Snapshot(VersionSpec::Latest))
            && (request.include_refresh_token == Some(true) || refresh.is_some())
        {
            Some(super::continuation::seal_refresh(
                &self.inner.keyring,
                &RefreshState {
                    t: table_id.clone(),
                    r: recipient.clone(),
                    v: version,
                    exp: now.saturating_add(settings.refresh_token_ttl_ms),
                },
            )?)
        } else {
            None
        };
        let paging = request.max_files.map(|m| Paging {
            page_size: (m as usize).min(settings.page_size_limit.max(1)),
            template: PageState {
                t: table_id.clone(),
                r: recipient.clone(),
                v: stream_range.map_or(version, |(s, _)| s),
                e: stream_range.map(|(_, e)| e),
                pos: 0,
                lim: None,
                m: None,
                h: params.clone(),
                exp: 0,
            },
            token_ttl_ms: settings.page_token_ttl_ms,
        });
        let predicate = match request
            .json_predicate_hints
            .clone()
            .filter(|t| !t.trim().is_empty())
        {
            Some(text) if settings.evaluate_json_hints && is_snapshot => {
                // Up to 1 MiB of JSON: parsed off the async threads.
                tokio::task::spawn_blocking(move || JsonPredicate::parse_bounded(&text))
                    .await
                    .map_err(|e| ServiceError::Internal(format!("hint parsing failed: {e}")))?
                    .map_err(ServiceError::InvalidParameter)?
                    .filter(|p| p.fits_schema(&resolved.info.column_types))
            }
            _ => None,
        };
        let (start_pos, limit) = match &page {
            Some(p) => (p.pos, p.lim),
            None => (
                0,
                if is_snapshot {
                    request.limit_hint
                } else {
                    None
                },
            ),
        };
        let emitter = Emitter::new(
            self.emit_context(EmitOptions {
                auth,
                info: resolved.info.clone(),
                format,
                id_hash,
                public_base,
                now_ms: now,
                end_stream,
                paging,
                refresh_token,
            })?,
            source,
            Selection {
                predicate,
                use_stats: settings.evaluate_json_hints_v2,
                limit,
            },
            start_pos,
        );
        let body = futures::stream::iter(head.into_iter().map(Ok))
            .chain(emitter.into_primed_stream().await?)
            .boxed();
        Ok(NdjsonResponse {
            version: stream_range.map_or(version, |(s, _)| s),
            format,
            end_stream_capability: caps.include_end_stream_action,
            async_query: false,
            file_id_hash: id_hash,
            lines: body,
        })
    }

    /// Validates a `startingVersion` range against the table (history gate, floor, latest).
    async fn stream_range(
        &self,
        auth: &Authorized,
        start: i64,
        end: Option<i64>,
    ) -> Result<(u64, u64), ServiceError> {
        let table = auth.table();
        if !table.history_shared {
            return Err(ServiceError::InvalidParameter(format!(
                "Reading table by version or timestamp is not supported because history sharing \
                 is not enabled on table: {}",
                table.qualified_name()
            )));
        }
        if start < table.start_version {
            return Err(ServiceError::InvalidParameter(format!(
                "You can only query table data since version {}.",
                table.start_version
            )));
        }
        let latest = self.latest(auth).await?.snapshot.version() as i64;
        if start > latest {
            return Err(ServiceError::InvalidParameter(format!(
                "Provided Start version({start}) for reading change data is invalid. Start \
                 version cannot be greater than the latest version of the table({latest})."
            )));
        }
        if let Some(e) = end.filter(|e| *e > latest) {
            return Err(ServiceError::InvalidParameter(format!(
                "Provided end version({e}) is invalid. End version cannot be greater than the \
                 latest version of the table({latest})."
            )));
        }
        Ok((start as u64, end.unwrap_or(latest) as u64))
    }

    /// Data-changing adds and removes of `start..=end`, plus metaData changes after `start`.
    async fn stream_source(
        &self,
        auth: &Authorized,
        start: u64,
        end: u64,
        historical_protocol: bool,
    ) -> Result<Source, ServiceError> {
        let (commits, timestamps) = self.commits_with_times(auth, start, end).await?;
        let mut items = Vec::new();
        for (c, commit) in commits.iter().enumerate() {
            if commit.version > start && commit.metadata.is_some() {
                items.push(ChangeItem::Metadata { c: c as u32 });
            }
            if historical_protocol && commit.version > start && commit.protocol.is_some() {
                items.push(ChangeItem::Protocol { c: c as u32 });
            }
            for (f, change) in commit.files.iter().enumerate() {
                use crate::delta::changes::ChangeKind;
                if change.kind != ChangeKind::Cdc && change.data_change {
                    items.push(ChangeItem::File {
                        c: c as u32,
                        f: f as u32,
                    });
                }
            }
        }
        Ok(Source::Changes {
            commits,
            timestamps,
            items,
        })
    }

    /// The parsed commits `start..=end` and their commit timestamps.
    pub(crate) async fn commits_with_times(
        &self,
        auth: &Authorized,
        start: u64,
        end: u64,
    ) -> Result<(Arc<Vec<crate::delta::changes::Commit>>, Vec<i64>), ServiceError> {
        let root = auth.table().location.url().clone();
        let name = auth.table().qualified_name();
        self.blocking(move |reader| {
            let err = |e| ServiceError::from_delta(e, &name);
            let latest = reader.latest(&root).map_err(err)?;
            let timeline = reader.timeline(&latest).map_err(err)?;
            let commits = reader.commits(&root, start, end).map_err(err)?;
            let timestamps = commits
                .iter()
                .map(|c| timeline.timestamp_of(c.version).unwrap_or(0))
                .collect();
            Ok((commits, timestamps))
        })
        .await
    }
}
