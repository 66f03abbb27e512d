//! Producing the body lines after protocol and metaData: file lines of snapshots, change lines
//! of `startingVersion` and change queries, metaData/protocol lines of later versions, and the
//! closing `endStreamAction` (pages, refresh tokens, in-band errors).
//!
//! Lines are produced one signed batch at a time from cached file lists, so a response is never
//! built whole in memory, and a page continues from a position in the same cached list.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::ServiceError;
use super::continuation::{PageState, seal_page};
use super::format::{self, ndjson_line};
use crate::delta::changes::{ChangeKind, Commit};
use crate::delta::files::ActiveFile;
use crate::delta::info::{ProtocolInfo, TableInfo};
use crate::domain::policy::Authorized;
use crate::hints::{FileFacts, JsonPredicate};
use crate::protocol::actions::{
    DeletionVector, DeltaAdd, DeltaCdc, DeltaFile, DeltaRemove, DeltaSingleAction, EndStreamAction,
    EndStreamLine, FileLine, ParquetChangeFile, ParquetChangeLine, ParquetFile,
};
use crate::protocol::capabilities::{FileIdHash, ResponseFormat};
use crate::storage::keyring::KeyringRef;
use crate::storage::signer::{DynUrlSigner, SignContext, SignedUrl};

/// One item of a change listing, pointing into the cached commits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChangeItem {
    /// `commits[c].files[f]`.
    File { c: u32, f: u32 },
    /// The metaData action of `commits[c]`.
    Metadata { c: u32 },
    /// The protocol action of `commits[c]`.
    Protocol { c: u32 },
}

/// What the body lists.
pub(crate) enum Source {
    /// Active files of one snapshot; `stamp` = (version, commit timestamp) on time travel.
    Snapshot {
        files: Arc<Vec<ActiveFile>>,
        stamp: Option<(i64, Option<i64>)>,
    },
    /// File actions of a commit range.
    Changes {
        commits: Arc<Vec<Commit>>,
        timestamps: Vec<i64>,
        items: Vec<ChangeItem>,
    },
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Self::Snapshot { files, .. } => files.len(),
            Self::Changes { items, .. } => items.len(),
        }
    }
}

/// Which files of a snapshot a query keeps.
pub(crate) struct Selection {
    pub(crate) predicate: Option<JsonPredicate>,
    pub(crate) use_stats: bool,
    /// Remaining `limitHint` rows.
    pub(crate) limit: Option<i64>,
}

/// Paging: page size and the token template for the next page.
pub(crate) struct Paging {
    pub(crate) page_size: usize,
    pub(crate) template: PageState,
    pub(crate) token_ttl_ms: i64,
}

/// Everything an emitter needs besides its position.
pub(crate) struct EmitContext {
    pub(crate) auth: Authorized,
    pub(crate) info: Arc<TableInfo>,
    pub(crate) format: ResponseFormat,
    pub(crate) id_hash: FileIdHash,
    pub(crate) signer: DynUrlSigner,
    pub(crate) keyring: KeyringRef,
    pub(crate) public_base: String,
    pub(crate) now_ms: i64,
    pub(crate) url_ttl_ms: i64,
    /// Request telemetry (URLs signed, bytes vended).
    pub(crate) telemetry: std::sync::Arc<super::telemetry::Telemetry>,
    /// Per-recipient usage (files and bytes vended count against daily limits).
    pub(crate) limits: std::sync::Arc<crate::domain::limits::LimitTracker>,
    /// This recipient's limits.
    pub(crate) quota: crate::domain::limits::Limits,
    /// This request's vended counter for its audit event, when audited.
    pub(crate) vended: Option<std::sync::Arc<crate::audit::vended::Vended>>,
    /// Counts this query against the recipient's concurrent-query limit while it streams.
    pub(crate) _in_flight: crate::domain::limits::InFlight,
    pub(crate) batch: usize,
    /// Close with an `endStreamAction` (and report errors in it).
    pub(crate) end_stream: bool,
    pub(crate) paging: Option<Paging>,
    pub(crate) refresh_token: Option<String>,
}

/// What varies between the requests that build an [`EmitContext`].
pub(crate) struct EmitOptions<'a> {
    pub(crate) auth: Authorized,
    pub(crate) info: Arc<TableInfo>,
    pub(crate) format: ResponseFormat,
    /// The client's `fileidhash`; without one, ids follow the response format.
    pub(crate) id_hash: Option<FileIdHash>,
    pub(crate) public_base: &'a str,
    pub(crate) now_ms: i64,
    pub(crate) end_stream: bool,
    pub(crate) paging: Option<Paging>,
    pub(crate) refresh_token: Option<String>,
}

impl crate::service::Service {
    /// An emitter context with this service's signer, keys and settings.
    pub(crate) fn emit_context(&self, o: EmitOptions<'_>) -> Result<EmitContext, ServiceError> {
        let settings = &self.inner.settings;
        let principal = o.auth.principal();
        let limits = settings.limits.for_recipient(&principal.properties);
        let in_flight = self
            .inner
            .limits
            .check_volume(&principal.recipient_id, &limits, o.now_ms)
            .and_then(|()| {
                crate::domain::limits::start_query(
                    &self.inner.limits,
                    &principal.recipient_id,
                    &limits,
                )
            })
            .map_err(ServiceError::from)?;
        let url_ttl_ms = o.auth.table().url_ttl_ms.unwrap_or(settings.url_ttl_ms);
        Ok(EmitContext {
            id_hash: o.id_hash.unwrap_or(match o.format {
                ResponseFormat::Parquet => FileIdHash::Parquet,
                ResponseFormat::Delta => FileIdHash::Delta,
            }),
            auth: o.auth,
            info: o.info,
            format: o.format,
            signer: self.inner.signer.clone(),
            keyring: self.inner.keyring.clone(),
            public_base: o.public_base.to_owned(),
            now_ms: o.now_ms,
            url_ttl_ms,
            telemetry: self.inner.telemetry.clone(),
            limits: self.inner.limits.clone(),
            quota: limits,
            vended: crate::audit::vended::current(),
            _in_flight: in_flight,
            batch: settings.sign_batch_size.max(1),
            end_stream: o.end_stream,
            paging: o.paging,
            refresh_token: o.refresh_token,
        })
    }
}

/// Hint evaluation budget of one request, in predicate nodes evaluated (a few hundred
/// milliseconds of one core). Past it the remaining files are kept unevaluated: hints may only
/// drop files, so keeping one is always right.
const HINT_BUDGET_NODES: u64 = 50_000_000;

/// Produces the body after the head lines.
pub(crate) struct Emitter {
    ctx: EmitContext,
    source: Source,
    selection: Selection,
    pos: usize,
    files_in_page: usize,
    min_expiry: Option<i64>,
    done: bool,
    /// Predicate nodes evaluated so far (see [`HINT_BUDGET_NODES`]).
    hint_work: std::cell::Cell<u64>,
    /// A batch picked ahead on the blocking pool.
    prepicked: Option<Vec<usize>>,
}

fn file_id(scheme: FileIdHash, path: &str) -> String {
    match scheme {
        FileIdHash::Parquet => hex::encode(Md5::digest(path.as_bytes())),
        FileIdHash::Delta => hex::encode(Sha256::digest(path.as_bytes())),
    }
}

/// What one picked item needs signed.
enum Picked {
    File {
        idx: usize,
        url_slot: usize,
        dv_slot: Option<usize>,
    },
    Other(usize),
}

impl Emitter {
    pub(crate) fn new(
        ctx: EmitContext,
        source: Source,
        selection: Selection,
        start: usize,
    ) -> Self {
        Self {
            ctx,
            source,
            selection,
            pos: start,
            files_in_page: 0,
            min_expiry: None,
            done: false,
            hint_work: std::cell::Cell::new(0),
            prepicked: None,
        }
    }

    /// The stream of body chunks.
    pub(crate) fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<Bytes, ServiceError>> + Send + 'static {
        futures::stream::unfold(self, |e| async move {
            let mut e = e.picked_off_thread().await?;
            e.next_chunk().await.map(|c| (c, e))
        })
    }

    /// With predicate hints, picking a batch is CPU work (every file against the whole tree):
    /// it runs on the blocking pool, never on the async threads that serve other clients.
    /// Its result waits in `prepicked` for [`Emitter::next_raw`].
    async fn picked_off_thread(mut self) -> Option<Self> {
        if self.selection.predicate.is_none() || self.done || self.prepicked.is_some() {
            return Some(self);
        }
        tokio::task::spawn_blocking(move || {
            let picked = self.pick();
            self.prepicked = Some(picked);
            self
        })
        .await
        .ok()
    }

    /// The recipient's mandatory partition filter (applied before any hint).
    fn allowed(&self, file: &ActiveFile) -> bool {
        self.ctx
            .auth
            .admits(&file.partition_values, &self.ctx.info.partition_keys)
    }

    fn keep(&self, file: &ActiveFile) -> bool {
        if !self.allowed(file) {
            return false;
        }
        let Some(predicate) = &self.selection.predicate else {
            return true;
        };
        let work = self
            .hint_work
            .get()
            .saturating_add(predicate.cost_per_file());
        if work > HINT_BUDGET_NODES {
            return true;
        }
        self.hint_work.set(work);
        let stats: Option<serde_json::Value> = if self.selection.use_stats {
            file.stats
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
        } else {
            None
        };
        let partition_values: HashMap<String, Option<String>> = file
            .partition_values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        predicate.may_match(&FileFacts {
            partition_columns: &self.ctx.info.partition_keys,
            partition_values: &partition_values,
            stats: stats.as_ref(),
            physical_names: &self.ctx.info.physical_names,
            has_deletion_vector: file.deletion_vector.is_some(),
        })
    }

    fn page_full(&self) -> bool {
        self.ctx
            .paging
            .as_ref()
            .is_some_and(|p| self.files_in_page >= p.page_size)
    }

    fn limit_reached(&self) -> bool {
        self.selection.limit.is_some_and(|l| l <= 0)
    }

    /// Picks the next batch of item indexes (files that pass the hints and the limit, plus
    /// metadata/protocol items), without crossing a page boundary.
    fn pick(&mut self) -> Vec<usize> {
        let mut picked = Vec::new();
        let mut files = 0;
        while files < self.ctx.batch && self.pos < self.source.len() {
            if self.limit_reached() {
                self.pos = self.source.len();
                break;
            }
            if self
                .ctx
                .paging
                .as_ref()
                .is_some_and(|p| self.files_in_page + files >= p.page_size)
            {
                break;
            }
            let i = self.pos;
            match &self.source {
                Source::Snapshot { files: list, .. } => {
                    let file = &list[i];
                    self.pos += 1;
                    if !self.keep(file) {
                        continue;
                    }
                    if let Some(limit) = self.selection.limit.as_mut() {
                        *limit -= file.live_records().unwrap_or(0);
                    }
                    files += 1;
                }
                Source::Changes { items, .. } => {
                    self.pos += 1;
                    if matches!(items[i], ChangeItem::File { .. }) {
                        if !self.file_at(i).is_some_and(|f| self.allowed(f)) {
                            continue;
                        }
                        files += 1;
                    }
                }
            }
            picked.push(i);
        }
        self.files_in_page += files;
        picked
    }

    /// The body, with its first batch already signed: a refusal there (a file outside the
    /// table root, a deletion vector in parquet format, a signer failure) becomes an ordinary
    /// JSON error response instead of a stream that breaks before its first byte. Later
    /// failures end the stream with the in-band error line when the client opted in to
    /// end-stream actions, and abort the transfer otherwise (never a silent truncation).
    pub(crate) async fn into_primed_stream(
        self,
    ) -> Result<
        impl futures::Stream<Item = Result<Bytes, ServiceError>> + Send + 'static,
        ServiceError,
    > {
        let mut primed = match self.picked_off_thread().await {
            Some(e) => e,
            None => return Err(ServiceError::Internal("file selection failed".into())),
        };
        let first = match primed.next_raw().await {
            Some(Err(e)) => return Err(e),
            first => first,
        };
        Ok(futures::stream::iter(first).chain(primed.into_stream()))
    }

    /// The next chunk, errors as they are.
    async fn next_raw(&mut self) -> Option<Result<Bytes, ServiceError>> {
        if self.done {
            return None;
        }
        let picked = match self.prepicked.take() {
            Some(p) => p,
            None => self.pick(),
        };
        if !picked.is_empty() {
            let r = self.render(&picked).await;
            if r.is_err() {
                self.done = true;
            }
            return Some(r);
        }
        self.done = true;
        if !self.ctx.end_stream {
            return None;
        }
        Some(self.end_line())
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        match self.next_raw().await? {
            Err(e) if self.ctx.end_stream => Some(self.error_line(&e)),
            other => Some(other),
        }
    }

    fn error_line(&self, e: &ServiceError) -> Result<Bytes, ServiceError> {
        let status = crate::service::error::http_status(e);
        let message = match e {
            ServiceError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        ndjson_line(&EndStreamLine {
            end_stream_action: EndStreamAction {
                error_message: Some(message),
                http_status_error_code: Some(status),
                ..EndStreamAction::default()
            },
        })
    }

    fn end_line(&self) -> Result<Bytes, ServiceError> {
        let more = self.pos < self.source.len() && !self.limit_reached() && self.page_full();
        let next_page_token = match (&self.ctx.paging, more) {
            (Some(paging), true) => {
                let mut state = paging.template.clone();
                state.pos = self.pos;
                state.lim = self.selection.limit;
                state.exp = self.ctx.now_ms.saturating_add(paging.token_ttl_ms);
                Some(seal_page(&self.ctx.keyring, &state)?)
            }
            _ => None,
        };
        ndjson_line(&EndStreamLine {
            end_stream_action: EndStreamAction {
                refresh_token: self.ctx.refresh_token.clone(),
                next_page_token,
                min_url_expiration_timestamp: Some(
                    self.min_expiry
                        .unwrap_or_else(|| self.ctx.now_ms.saturating_add(self.ctx.url_ttl_ms)),
                ),
                ..EndStreamAction::default()
            },
        })
    }

    fn file_at(&self, i: usize) -> Option<&ActiveFile> {
        match &self.source {
            Source::Snapshot { files, .. } => files.get(i),
            Source::Changes { commits, items, .. } => match items.get(i)? {
                ChangeItem::File { c, f } => commits
                    .get(*c as usize)?
                    .files
                    .get(*f as usize)
                    .map(|cf| &cf.file),
                _ => None,
            },
        }
    }

    async fn render(&mut self, picked: &[usize]) -> Result<Bytes, ServiceError> {
        // Collect every path to sign: data files, then file-backed deletion vectors.
        let mut paths: Vec<String> = Vec::new();
        let mut plan: Vec<Picked> = Vec::with_capacity(picked.len());
        for &i in picked {
            let Some(file) = self.file_at(i) else {
                plan.push(Picked::Other(i));
                continue;
            };
            let url_slot = paths.len();
            paths.push(file.path.clone());
            let dv_slot = match &file.deletion_vector {
                Some(_) if self.ctx.format == ResponseFormat::Parquet => {
                    return Err(ServiceError::Unsupported(
                        "Deletion Vector property disabled: a file of this table has a deletion \
                         vector; request responseformat=delta with readerfeatures=deletionvectors"
                            .to_owned(),
                    ));
                }
                Some(dv) if dv.storage_type != "i" => {
                    let rel = dv.relative_file_path().ok_or_else(|| {
                        ServiceError::Internal(format!(
                            "unreadable deletion vector descriptor in file {}",
                            file.path
                        ))
                    })?;
                    paths.push(rel);
                    Some(paths.len() - 1)
                }
                _ => None,
            };
            plan.push(Picked::File {
                idx: i,
                url_slot,
                dv_slot,
            });
        }
        let vended: i64 = plan
            .iter()
            .filter_map(|p| match p {
                Picked::File { idx, .. } => self.file_at(*idx).map(|f| f.size.max(0)),
                Picked::Other(_) => None,
            })
            .sum();
        let vended = u64::try_from(vended).unwrap_or(0);
        let files = plan
            .iter()
            .filter(|p| matches!(p, Picked::File { .. }))
            .count() as u64;
        // Daily limits are taken before anything is signed: a batch that would cross one is
        // refused (before the first line: a 429 for the whole query).
        self.ctx.limits.take_volume(
            &self.ctx.auth.principal().recipient_id,
            &self.ctx.quota,
            files,
            vended,
            self.ctx.now_ms,
        )?;
        let signed = if paths.is_empty() {
            Vec::new()
        } else {
            let table = self.ctx.auth.table();
            let ctx = SignContext {
                location: &table.location,
                table_key: &table.id,
                recipient_id: &self.ctx.auth.principal().recipient_id,
                public_base: &self.ctx.public_base,
                now_ms: self.ctx.now_ms,
                ttl_ms: table.url_ttl_ms,
            };
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            self.ctx.signer.sign_batch(&ctx, &refs).await?
        };
        if let Some(v) = &self.ctx.vended {
            v.add(files, vended);
        }
        self.ctx
            .telemetry
            .urls_signed
            .fetch_add(signed.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.ctx
            .telemetry
            .bytes_vended
            .fetch_add(vended, std::sync::atomic::Ordering::Relaxed);
        let mut out = Vec::with_capacity(picked.len() * 512);
        for p in plan {
            let line = match p {
                Picked::File {
                    idx,
                    url_slot,
                    dv_slot,
                } => {
                    let dv = dv_slot.map(|s| &signed[s]);
                    let expiry = dv.map_or(signed[url_slot].expires_at_ms, |d| {
                        d.expires_at_ms.min(signed[url_slot].expires_at_ms)
                    });
                    self.min_expiry = Some(self.min_expiry.map_or(expiry, |m| m.min(expiry)));
                    self.render_file(idx, &signed[url_slot], dv, expiry)?
                }
                Picked::Other(idx) => self.render_other(idx)?,
            };
            out.extend_from_slice(&line);
        }
        Ok(Bytes::from(out))
    }

    fn deletion_vector(file: &ActiveFile, dv_url: Option<&SignedUrl>) -> Option<DeletionVector> {
        file.deletion_vector.as_ref().map(|dv| match dv_url {
            Some(url) => DeletionVector {
                storage_type: "p".to_owned(),
                path_or_inline_dv: url.url.clone(),
                offset: dv.offset,
                size_in_bytes: dv.size_in_bytes,
                cardinality: dv.cardinality,
            },
            None => DeletionVector {
                storage_type: dv.storage_type.clone(),
                path_or_inline_dv: dv.path_or_inline_dv.clone(),
                offset: dv.offset,
                size_in_bytes: dv.size_in_bytes,
                cardinality: dv.cardinality,
            },
        })
    }

    fn render_file(
        &self,
        idx: usize,
        url: &SignedUrl,
        dv_url: Option<&SignedUrl>,
        expiry: i64,
    ) -> Result<Bytes, ServiceError> {
        let id_hash = self.ctx.id_hash;
        let delta = self.ctx.format == ResponseFormat::Delta;
        match &self.source {
            Source::Snapshot { files, stamp } => {
                let file = &files[idx];
                let (version, timestamp) = match stamp {
                    Some((v, ts)) => (Some(*v), *ts),
                    None => (None, None),
                };
                let id = file_id(id_hash, &file.path);
                if delta {
                    ndjson_line(&FileLine {
                        file: DeltaFile {
                            id,
                            deletion_vector_file_id: None,
                            version,
                            timestamp,
                            expiration_timestamp: expiry,
                            delta_single_action: DeltaSingleAction::Add(add_action(
                                file, url, dv_url, true,
                            )),
                        },
                    })
                } else {
                    ndjson_line(&FileLine {
                        file: ParquetFile {
                            url: url.url.clone(),
                            id,
                            partition_values: file.partition_values.clone(),
                            size: file.size,
                            stats: file.stats.clone(),
                            version,
                            timestamp,
                            expiration_timestamp: expiry,
                        },
                    })
                }
            }
            Source::Changes {
                commits,
                timestamps,
                items,
            } => {
                let ChangeItem::File { c, f } = items[idx] else {
                    return Err(ServiceError::Internal("change item is not a file".into()));
                };
                let commit = &commits[c as usize];
                let change = &commit.files[f as usize];
                let file = &change.file;
                let version = commit.version as i64;
                let timestamp = timestamps[c as usize];
                let id = file_id(id_hash, &file.path);
                if delta {
                    let action = match change.kind {
                        ChangeKind::Add => DeltaSingleAction::Add(add_action(
                            file,
                            url,
                            dv_url,
                            change.data_change,
                        )),
                        ChangeKind::Remove => DeltaSingleAction::Remove(DeltaRemove {
                            path: url.url.clone(),
                            deletion_timestamp: change.deletion_timestamp,
                            data_change: change.data_change,
                            extended_file_metadata: change.extended_file_metadata,
                            partition_values: file.partition_values.clone(),
                            size: file.size,
                            stats: file.stats.clone(),
                            deletion_vector: Self::deletion_vector(file, dv_url),
                            base_row_id: file.base_row_id,
                            default_row_commit_version: file.default_row_commit_version,
                        }),
                        ChangeKind::Cdc => DeltaSingleAction::Cdc(DeltaCdc {
                            path: url.url.clone(),
                            partition_values: file.partition_values.clone(),
                            size: file.size,
                            data_change: false,
                        }),
                    };
                    ndjson_line(&FileLine {
                        file: DeltaFile {
                            id,
                            deletion_vector_file_id: None,
                            version: Some(version),
                            timestamp: Some(timestamp),
                            expiration_timestamp: expiry,
                            delta_single_action: action,
                        },
                    })
                } else {
                    let payload = ParquetChangeFile {
                        url: url.url.clone(),
                        id,
                        partition_values: file.partition_values.clone(),
                        size: file.size,
                        stats: (change.kind == ChangeKind::Add)
                            .then(|| file.stats.clone())
                            .flatten(),
                        expiration_timestamp: expiry,
                        timestamp,
                        version,
                    };
                    ndjson_line(&match change.kind {
                        ChangeKind::Add => ParquetChangeLine::Add(payload),
                        ChangeKind::Remove => ParquetChangeLine::Remove(payload),
                        ChangeKind::Cdc => ParquetChangeLine::Cdf(payload),
                    })
                }
            }
        }
    }

    fn render_other(&self, idx: usize) -> Result<Bytes, ServiceError> {
        let Source::Changes { commits, items, .. } = &self.source else {
            return Err(ServiceError::Internal("snapshot item is not a file".into()));
        };
        let table = self.ctx.auth.table();
        match items[idx] {
            ChangeItem::Metadata { c } => {
                let commit = &commits[c as usize];
                let Some(metadata) = &commit.metadata else {
                    return Err(ServiceError::Internal("commit has no metaData".into()));
                };
                let mut info = (*self.ctx.info).clone();
                info.metadata = (**metadata).clone();
                format::metadata_line(self.ctx.format, &info, table, Some(commit.version as i64))
            }
            ChangeItem::Protocol { c } => {
                let commit = &commits[c as usize];
                let protocol: &ProtocolInfo = commit
                    .protocol
                    .as_ref()
                    .ok_or_else(|| ServiceError::Internal("commit has no protocol".into()))?;
                format::delta_protocol_line(protocol, Some(commit.version as i64))
            }
            ChangeItem::File { .. } => Err(ServiceError::Internal("file rendered as other".into())),
        }
    }
}

fn add_action(
    file: &ActiveFile,
    url: &SignedUrl,
    dv_url: Option<&SignedUrl>,
    data_change: bool,
) -> DeltaAdd {
    DeltaAdd {
        path: url.url.clone(),
        partition_values: file.partition_values.clone(),
        size: file.size,
        modification_time: file.modification_time,
        data_change,
        stats: file.stats.clone(),
        deletion_vector: Emitter::deletion_vector(file, dv_url),
        base_row_id: file.base_row_id,
        default_row_commit_version: file.default_row_commit_version,
    }
}
