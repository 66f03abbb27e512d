//! query_table: the snapshot read path (latest, `version`, `timestamp`), with JSON predicate
//! hints, `limitHint`, format negotiation, file ids and batch signing, streamed line by line.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::format::ndjson_line;
use super::resolve::{Opened, TableRef, VersionSpec};
use super::{Service, ServiceError};
use crate::delta::files::ActiveFile;
use crate::delta::info::TableInfo;
use crate::domain::model::Principal;
use crate::domain::policy::Authorized;
use crate::hints::{FileFacts, JsonPredicate};
use crate::protocol::actions::{
    DeletionVector, DeltaAdd, DeltaFile, DeltaSingleAction, FileLine, ParquetFile,
};
use crate::protocol::capabilities::{Capabilities, FileIdHash, ResponseFormat};
use crate::protocol::request::QueryRequest;
use crate::storage::signer::{DynUrlSigner, SignContext};

/// A streamed NDJSON response and the headers that describe it.
pub struct NdjsonResponse {
    /// Value of `Delta-Table-Version`.
    pub version: u64,
    /// Format used (for the capabilities header).
    pub format: ResponseFormat,
    /// `fileidhash` to echo, if the client sent one.
    pub file_id_hash: Option<FileIdHash>,
    /// The lines; an `Err` after the first line aborts the body.
    pub lines: BoxStream<'static, Result<Bytes, ServiceError>>,
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
        lines: Vec<Bytes>,
    ) -> Self {
        Self {
            version,
            format,
            file_id_hash,
            lines: futures::stream::iter(lines.into_iter().map(Ok)).boxed(),
        }
    }
}

/// Query options the file emitter needs.
struct Selection {
    predicate: Option<JsonPredicate>,
    use_stats: bool,
    limit: Option<i64>,
}

fn not_yet(field: &str) -> ServiceError {
    ServiceError::InvalidParameter(format!(
        "'{field}' is not supported by this server yet; send the query without it"
    ))
}

fn validate(q: &QueryRequest) -> Result<VersionSpec, ServiceError> {
    let set = [
        q.version.is_some(),
        q.timestamp.is_some(),
        q.starting_version.is_some(),
    ];
    if set.iter().filter(|b| **b).count() > 1 {
        return Err(ServiceError::InvalidParameter(
            "Please only provide one of: version,timestamp,startingVersion".to_owned(),
        ));
    }
    if q.max_files.is_some_and(|m| m <= 0) {
        return Err(ServiceError::InvalidParameter(
            "maxFiles must be positive.".to_owned(),
        ));
    }
    if q.limit_hint.is_some_and(|l| l < 0) {
        return Err(ServiceError::InvalidParameter(
            "limitHint cannot be negative.".to_owned(),
        ));
    }
    if q.include_refresh_token == Some(true) && (q.version.is_some() || q.timestamp.is_some()) {
        return Err(ServiceError::InvalidParameter(
            "includeRefreshToken cannot be used when querying a specific version.".to_owned(),
        ));
    }
    if q.starting_version.is_some() {
        return Err(not_yet("startingVersion"));
    }
    if q.ending_version.is_some() {
        return Err(not_yet("endingVersion"));
    }
    if q.max_files.is_some() {
        return Err(not_yet("maxFiles"));
    }
    if q.page_token.is_some() {
        return Err(not_yet("pageToken"));
    }
    if q.refresh_token.is_some() {
        return Err(not_yet("refreshToken"));
    }
    Ok(match (&q.version, &q.timestamp) {
        (Some(v), _) => VersionSpec::Version(*v),
        (_, Some(t)) => VersionSpec::Timestamp(t.clone()),
        _ => VersionSpec::Latest,
    })
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
        let spec = validate(&request)?;
        let Opened {
            auth,
            resolved,
            format: fmt,
            head,
        } = self.open_table(principal, t, spec, caps).await?;
        let snapshot = resolved.snapshot.clone();
        let name = auth.table().qualified_name();
        let files = self
            .blocking(move |reader| {
                reader
                    .files(&snapshot)
                    .map_err(|e| ServiceError::from_delta(e, &name))
            })
            .await?;
        let settings = &self.inner.settings;
        let predicate = if settings.evaluate_json_hints {
            request
                .json_predicate_hints
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .and_then(JsonPredicate::parse)
                .filter(|p| p.fits_schema(&resolved.info.column_types))
        } else {
            None
        };
        let emitter = Emitter {
            auth,
            files,
            info: resolved.info.clone(),
            format: fmt,
            id_hash: id_hash.unwrap_or(match fmt {
                ResponseFormat::Parquet => FileIdHash::Parquet,
                ResponseFormat::Delta => FileIdHash::Delta,
            }),
            selection: Selection {
                predicate,
                use_stats: settings.evaluate_json_hints_v2,
                limit: request.limit_hint,
            },
            version_stamp: resolved.time_travel.then(|| {
                (
                    resolved.snapshot.version() as i64,
                    resolved.time_travel_timestamp,
                )
            }),
            signer: self.inner.signer.clone(),
            public_base: public_base.to_owned(),
            now_ms: self.now_ms(),
            batch: settings.sign_batch_size.max(1),
            pos: 0,
            done: false,
        };
        let body = futures::stream::iter(head.into_iter().map(Ok))
            .chain(futures::stream::unfold(emitter, |mut e| async move {
                e.next_chunk().map(|chunk| (chunk, e))
            }))
            .boxed();
        Ok(NdjsonResponse {
            version: resolved.snapshot.version(),
            format: fmt,
            file_id_hash: id_hash,
            lines: body,
        })
    }
}

/// Produces the file lines of a query, one signed batch at a time.
struct Emitter {
    auth: Authorized,
    files: Arc<Vec<ActiveFile>>,
    info: Arc<TableInfo>,
    format: ResponseFormat,
    id_hash: FileIdHash,
    selection: Selection,
    version_stamp: Option<(i64, Option<i64>)>,
    signer: DynUrlSigner,
    public_base: String,
    now_ms: i64,
    batch: usize,
    pos: usize,
    done: bool,
}

fn file_id(scheme: FileIdHash, path: &str) -> String {
    match scheme {
        FileIdHash::Parquet => hex::encode(Md5::digest(path.as_bytes())),
        FileIdHash::Delta => hex::encode(Sha256::digest(path.as_bytes())),
    }
}

impl Emitter {
    fn keep(&self, file: &ActiveFile) -> bool {
        let Some(predicate) = &self.selection.predicate else {
            return true;
        };
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
            partition_columns: &self.info.partition_keys,
            partition_values: &partition_values,
            stats: stats.as_ref(),
            physical_names: &self.info.physical_names,
            has_deletion_vector: file.deletion_vector.is_some(),
        })
    }

    /// Picks the next batch of files that pass the hints and the limit.
    fn pick(&mut self) -> Vec<usize> {
        let mut picked = Vec::new();
        while picked.len() < self.batch && self.pos < self.files.len() {
            if self.selection.limit.is_some_and(|l| l <= 0) {
                self.pos = self.files.len();
                break;
            }
            let i = self.pos;
            self.pos += 1;
            let file = &self.files[i];
            if !self.keep(file) {
                continue;
            }
            if let Some(limit) = self.selection.limit.as_mut() {
                *limit -= file.live_records().unwrap_or(0);
            }
            picked.push(i);
        }
        picked
    }

    fn next_chunk(&mut self) -> Option<Result<Bytes, ServiceError>> {
        if self.done {
            return None;
        }
        let picked = self.pick();
        if picked.is_empty() {
            self.done = true;
            return None;
        }
        let result = self.render(&picked);
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    fn render(&self, picked: &[usize]) -> Result<Bytes, ServiceError> {
        // Collect every path to sign: data files, then file-backed deletion vectors.
        let mut paths: Vec<String> = picked.iter().map(|&i| self.files[i].path.clone()).collect();
        let mut dv_slot: Vec<Option<usize>> = Vec::with_capacity(picked.len());
        for &i in picked {
            let file = &self.files[i];
            match &file.deletion_vector {
                Some(dv) if self.format == ResponseFormat::Parquet => {
                    let _ = dv;
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
                    dv_slot.push(Some(paths.len()));
                    paths.push(rel);
                }
                _ => dv_slot.push(None),
            }
        }
        let table = self.auth.table();
        let principal = self.auth.principal();
        let ctx = SignContext {
            location: &table.location,
            table_key: &table.id,
            recipient_id: &principal.recipient_id,
            public_base: &self.public_base,
            now_ms: self.now_ms,
        };
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let signed = self.signer.sign_batch(&ctx, &refs)?;
        let (version, timestamp) = match self.version_stamp {
            Some((v, ts)) => (Some(v), ts),
            None => (None, None),
        };
        let mut out = Vec::with_capacity(picked.len() * 512);
        for (k, &i) in picked.iter().enumerate() {
            let file = &self.files[i];
            let data_url = &signed[k];
            let id = file_id(self.id_hash, &file.path);
            let line = match self.format {
                ResponseFormat::Parquet => ndjson_line(&FileLine {
                    file: ParquetFile {
                        url: data_url.url.clone(),
                        id,
                        partition_values: file.partition_values.clone(),
                        size: file.size,
                        stats: file.stats.clone(),
                        version,
                        timestamp,
                        expiration_timestamp: data_url.expires_at_ms,
                    },
                })?,
                ResponseFormat::Delta => {
                    let mut expiration = data_url.expires_at_ms;
                    let deletion_vector =
                        file.deletion_vector.as_ref().map(|dv| match dv_slot[k] {
                            Some(slot) => {
                                expiration = expiration.min(signed[slot].expires_at_ms);
                                DeletionVector {
                                    storage_type: "p".to_owned(),
                                    path_or_inline_dv: signed[slot].url.clone(),
                                    offset: dv.offset,
                                    size_in_bytes: dv.size_in_bytes,
                                    cardinality: dv.cardinality,
                                }
                            }
                            None => DeletionVector {
                                storage_type: dv.storage_type.clone(),
                                path_or_inline_dv: dv.path_or_inline_dv.clone(),
                                offset: dv.offset,
                                size_in_bytes: dv.size_in_bytes,
                                cardinality: dv.cardinality,
                            },
                        });
                    ndjson_line(&FileLine {
                        file: DeltaFile {
                            id,
                            deletion_vector_file_id: None,
                            version,
                            timestamp,
                            expiration_timestamp: expiration,
                            delta_single_action: DeltaSingleAction {
                                add: DeltaAdd {
                                    path: data_url.url.clone(),
                                    partition_values: file.partition_values.clone(),
                                    size: file.size,
                                    modification_time: file.modification_time,
                                    data_change: true,
                                    stats: file.stats.clone(),
                                    deletion_vector,
                                    base_row_id: file.base_row_id,
                                    default_row_commit_version: file.default_row_commit_version,
                                },
                            },
                        },
                    })?
                }
            };
            out.extend_from_slice(&line);
        }
        Ok(Bytes::from(out))
    }
}
