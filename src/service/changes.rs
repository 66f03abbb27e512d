//! query_table_changes: the change data feed (`GET .../changes`).

use std::collections::HashMap;

use futures::StreamExt;

use super::continuation::{PageState, open_page, params_hash};
use super::emit::{ChangeItem, EmitOptions, Emitter, Paging, Selection, Source};
use super::query::NdjsonResponse;
use super::resolve::{TableRef, VersionSpec};
use super::timestamp::{format_ms, parse_timestamp};
use super::{Service, ServiceError, format};
use crate::domain::model::Principal;
use crate::domain::policy::Authorized;
use crate::protocol::capabilities::{Capabilities, FileIdHash, ResponseFormat};

/// Query parameters of `/changes`, as sent.
#[derive(Debug, Clone, Default)]
pub struct ChangesParams {
    /// `startingVersion`.
    pub starting_version: Option<String>,
    /// `startingTimestamp`.
    pub starting_timestamp: Option<String>,
    /// `endingVersion`.
    pub ending_version: Option<String>,
    /// `endingTimestamp`.
    pub ending_timestamp: Option<String>,
    /// `includeHistoricalMetadata` (`true`/`True`).
    pub include_historical_metadata: Option<String>,
    /// `includeHistoricalProtocol` (delta format only).
    pub include_historical_protocol: Option<String>,
    /// `maxFiles`.
    pub max_files: Option<String>,
    /// `pageToken`.
    pub page_token: Option<String>,
}

impl ChangesParams {
    /// From a query-string map (unknown keys ignored).
    pub fn from_map(mut m: HashMap<String, String>) -> Self {
        let mut take = |k: &str| m.remove(k).filter(|v| !v.is_empty());
        Self {
            starting_version: take("startingVersion"),
            starting_timestamp: take("startingTimestamp"),
            ending_version: take("endingVersion"),
            ending_timestamp: take("endingTimestamp"),
            include_historical_metadata: take("includeHistoricalMetadata"),
            include_historical_protocol: take("includeHistoricalProtocol"),
            max_files: take("maxFiles"),
            page_token: take("pageToken"),
        }
    }
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::InvalidParameter(msg.into())
}

fn flag(name: &str, v: Option<&str>) -> Result<bool, ServiceError> {
    match v.map(str::trim) {
        None => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(s) => Err(bad(format!("{name} must be true or false, got '{s}'"))),
    }
}

fn version_param(name: &str, v: &str) -> Result<i64, ServiceError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| bad(format!("{name} is not a valid number.")))
}

/// The resolved range of a change query.
struct Range {
    start: u64,
    end: u64,
}

impl Service {
    /// `GET .../changes`.
    pub async fn query_table_changes(
        &self,
        principal: &Principal,
        t: TableRef<'_>,
        caps: &Capabilities,
        file_id_hash: Option<&str>,
        params: &ChangesParams,
        public_base: &str,
    ) -> Result<NdjsonResponse, ServiceError> {
        // Authorize first: callers learn nothing about tables they may not read.
        let auth = self
            .authorize(principal, t.share, t.schema, t.table)
            .await?;
        let id_hash = file_id_hash
            .map(FileIdHash::parse)
            .transpose()
            .map_err(ServiceError::InvalidParameter)?;
        if params.starting_version.is_some() && params.starting_timestamp.is_some() {
            return Err(bad(
                "Multiple starting arguments provided for CDF read. Please provide one of either \
                 startingTimestamp or startingVersion.",
            ));
        }
        if params.ending_version.is_some() && params.ending_timestamp.is_some() {
            return Err(bad(
                "Multiple ending arguments provided for CDF read. Please provide one of either \
                 endingTimestamp or endingVersion.",
            ));
        }
        if params.starting_version.is_none() && params.starting_timestamp.is_none() {
            return Err(bad(
                "No startingVersion or startingTimestamp provided for CDF read.",
            ));
        }
        let starting_version = params
            .starting_version
            .as_deref()
            .map(|v| version_param("startingVersion", v))
            .transpose()?;
        let ending_version = params
            .ending_version
            .as_deref()
            .map(|v| version_param("endingVersion", v))
            .transpose()?;
        if starting_version.is_some_and(|v| v < 0) {
            return Err(bad("startingVersion cannot be negative."));
        }
        if ending_version.is_some_and(|v| v < 0) {
            return Err(bad("endingVersion cannot be negative."));
        }
        let max_files = match params.max_files.as_deref() {
            None => None,
            Some(m) => match m.trim().parse::<i64>() {
                Ok(n) if n > 0 => Some(n as usize),
                _ => return Err(bad("maxFiles must be positive.")),
            },
        };
        let historical_metadata = flag(
            "includeHistoricalMetadata",
            params.include_historical_metadata.as_deref(),
        )?;
        let historical_protocol = flag(
            "includeHistoricalProtocol",
            params.include_historical_protocol.as_deref(),
        )?;
        let starting_ts = params
            .starting_timestamp
            .as_deref()
            .map(|t| parse_timestamp(t).map_err(|e| bad(format!("Invalid startingTimestamp: {e}"))))
            .transpose()?;
        let ending_ts = params
            .ending_timestamp
            .as_deref()
            .map(|t| parse_timestamp(t).map_err(|e| bad(format!("Invalid endingTimestamp: {e}"))))
            .transpose()?;

        let table = auth.table().clone();
        if !table.history_shared {
            return Err(bad(format!(
                "cdf is not enabled on table {}",
                table.qualified_name()
            )));
        }
        let latest = self.latest(&auth).await?;
        let latest_version = latest.snapshot.version();
        let format = format::negotiate(caps, &latest.info, &table)?;
        // The page token pins the resolved range; only the raw parameters must stay the same.
        let hash = params_hash(&[
            "changes",
            params.starting_version.as_deref().unwrap_or(""),
            params.starting_timestamp.as_deref().unwrap_or(""),
            params.ending_version.as_deref().unwrap_or(""),
            params.ending_timestamp.as_deref().unwrap_or(""),
            &historical_metadata.to_string(),
            &historical_protocol.to_string(),
            format.as_str(),
        ]);
        let now = self.now_ms();
        let settings = &self.inner.settings;
        let page = params
            .page_token
            .as_deref()
            .map(|tok| {
                open_page(
                    &self.inner.keyring,
                    tok,
                    &auth.principal().recipient_id,
                    &table.id,
                    &hash,
                    now,
                    settings.url_ttl_ms,
                )
            })
            .transpose()?;
        let range = match &page {
            Some(p) => Range {
                start: p.v,
                end: p.e.unwrap_or(p.v),
            },
            None => {
                self.resolve_range(
                    &auth,
                    (
                        starting_version,
                        params.starting_timestamp.as_deref(),
                        starting_ts,
                    ),
                    (
                        ending_version,
                        params.ending_timestamp.as_deref(),
                        ending_ts,
                    ),
                    latest_version,
                )
                .await?
            }
        };
        let (commits, timestamps) = self
            .commits_with_times(&auth, range.start, range.end)
            .await?;
        // Change data must have been recorded for every version of the range.
        let start_info = self
            .resolve(&auth, VersionSpec::Pinned(range.start))
            .await?
            .info;
        let mut cdf_on = start_info.change_data_feed_enabled();
        for commit in commits.iter() {
            if let Some(m) = &commit.metadata {
                cdf_on = m
                    .configuration
                    .get("delta.enableChangeDataFeed")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            }
            if !cdf_on {
                return Err(bad(format!(
                    "Error getting change data for range [{}, {}] as change data was not \
                     recorded for version [{}]",
                    range.start, range.end, commit.version
                )));
            }
        }
        let (head_info, head_version) = match (historical_metadata, page.as_ref().and_then(|p| p.m))
        {
            (true, _) => (start_info.clone(), range.start),
            (false, Some(m)) if m != latest_version => {
                (self.resolve(&auth, VersionSpec::Pinned(m)).await?.info, m)
            }
            (false, _) => (latest.info.clone(), latest_version),
        };
        let protocol_version =
            (historical_protocol && format == ResponseFormat::Delta).then_some(head_version as i64);
        let head = format::head_lines(
            format,
            &head_info,
            &table,
            Some(head_version as i64),
            protocol_version,
        )?;
        let mut items = Vec::new();
        for (c, commit) in commits.iter().enumerate() {
            let c32 = c as u32;
            if commit.version > range.start {
                if historical_metadata && commit.metadata.is_some() {
                    items.push(ChangeItem::Metadata { c: c32 });
                }
                if historical_protocol
                    && format == ResponseFormat::Delta
                    && commit.protocol.is_some()
                {
                    items.push(ChangeItem::Protocol { c: c32 });
                }
            }
            let cdc = commit.has_cdc();
            if !cdc && commit.is_noop_merge() {
                continue;
            }
            for (f, change) in commit.files.iter().enumerate() {
                use crate::delta::changes::ChangeKind;
                let wanted = if cdc {
                    change.kind == ChangeKind::Cdc
                } else {
                    change.kind != ChangeKind::Cdc && change.data_change
                };
                if wanted {
                    items.push(ChangeItem::File {
                        c: c32,
                        f: f as u32,
                    });
                }
            }
        }
        let end_stream = caps.include_end_stream_action || max_files.is_some() || page.is_some();
        let paging = max_files.map(|m| Paging {
            page_size: m.min(settings.page_size_limit.max(1)),
            template: PageState {
                t: table.id.clone(),
                r: auth.principal().recipient_id.clone(),
                v: range.start,
                e: Some(range.end),
                pos: 0,
                lim: None,
                m: Some(head_version),
                h: hash.clone(),
                exp: 0,
            },
            token_ttl_ms: settings.page_token_ttl_ms,
        });
        let emitter = Emitter::new(
            self.emit_context(EmitOptions {
                auth,
                info: latest.info.clone(),
                format,
                id_hash,
                public_base,
                now_ms: now,
                end_stream,
                paging,
                refresh_token: None,
            })?,
            Source::Changes {
                commits,
                timestamps,
                items,
            },
            Selection {
                predicate: None,
                use_stats: false,
                limit: None,
            },
            page.as_ref().map_or(0, |p| p.pos),
        );
        Ok(NdjsonResponse {
            version: range.start,
            format,
            end_stream_capability: caps.include_end_stream_action,
            async_query: false,
            file_id_hash: id_hash,
            lines: futures::stream::iter(head.into_iter().map(Ok))
                .chain(emitter.into_primed_stream().await?)
                .boxed(),
        })
    }

    /// Resolves the start and end of a change query (PROTOCOL-NOTES §6 boundary rules).
    async fn resolve_range(
        &self,
        auth: &Authorized,
        start: (Option<i64>, Option<&str>, Option<i64>),
        end: (Option<i64>, Option<&str>, Option<i64>),
        latest: u64,
    ) -> Result<Range, ServiceError> {
        let table = auth.table();
        let needs_timeline = start.2.is_some() || end.2.is_some();
        let timeline = if needs_timeline {
            let root = table.location.url().clone();
            let name = table.qualified_name();
            Some(
                self.blocking(move |reader| {
                    let err = |e| ServiceError::from_delta(e, &name);
                    let latest = reader.latest(&root).map_err(err)?;
                    reader.timeline(&latest).map_err(err)
                })
                .await?,
            )
        } else {
            None
        };
        let first = timeline.as_ref().and_then(|t| t.earliest());
        let last = timeline.as_ref().and_then(|t| t.latest());
        let after_latest = |text: &str| {
            bad(format!(
                "The provided timestamp ({text}) is after the latest version available to this \
                 table ({}). Please use a timestamp less than or equal to {}.",
                last.map_or(0, |c| c.version),
                last.map_or_else(String::new, |c| format_ms(c.timestamp_ms))
            ))
        };
        let start_version: i64 = match start {
            (Some(v), _, _) => v,
            (None, Some(text), Some(ts)) => {
                let tl = timeline.as_ref().ok_or_else(|| bad("no commit timeline"))?;
                if first.is_some_and(|f| ts < f.timestamp_ms) {
                    return Err(bad(format!(
                        "The provided timestamp ({text}) is before the earliest version available \
                         to this table ({}). Please use a timestamp greater than or equal to {}.",
                        first.map_or(0, |c| c.version),
                        first.map_or_else(String::new, |c| format_ms(c.timestamp_ms))
                    )));
                }
                match tl.first_at_or_after(ts) {
                    Some(c) => c.version as i64,
                    None => return Err(after_latest(text)),
                }
            }
            _ => {
                return Err(bad(
                    "No startingVersion or startingTimestamp provided for CDF read.",
                ));
            }
        };
        if start_version > latest as i64 {
            return Err(bad(format!(
                "Provided Start version({start_version}) for reading change data is invalid. \
                 Start version cannot be greater than the latest version of the table({latest})."
            )));
        }
        let end_version: i64 = match end {
            (Some(v), _, _) => v.min(latest as i64),
            (None, Some(text), Some(ts)) => {
                let tl = timeline.as_ref().ok_or_else(|| bad("no commit timeline"))?;
                if last.is_some_and(|l| ts > l.timestamp_ms) {
                    return Err(after_latest(text));
                }
                match tl.last_at_or_before(ts) {
                    Some(c) => c.version as i64,
                    None => {
                        return Err(bad(format!(
                            "CDF range from start {start_version} to end (before the first \
                             commit) was invalid. End cannot be before start."
                        )));
                    }
                }
            }
            _ => latest as i64,
        };
        if end_version < start_version {
            return Err(bad(format!(
                "CDF range from start {start_version} to end {end_version} was invalid. End \
                 cannot be before start."
            )));
        }
        if start_version < table.start_version {
            return Err(bad(format!(
                "You can only query table changes since version {}.",
                table.start_version
            )));
        }
        Ok(Range {
            start: start_version as u64,
            end: end_version as u64,
        })
    }
}
