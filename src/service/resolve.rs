//! Table authorization and version resolution (latest, version, timestamp) with the history
//! gate: time travel needs `historyShared`, and never goes below the table's `startVersion`.

use std::sync::Arc;

use delta_kernel::SnapshotRef;

use bytes::Bytes;

use super::format;
use super::timestamp::{format_ms, parse_timestamp};
use super::{Service, ServiceError};
use crate::delta::info::TableInfo;
use crate::domain::model::{Principal, SharedTable};
use crate::domain::policy::{Authorized, authorize_table};
use crate::protocol::capabilities::{Capabilities, ResponseFormat};

/// Which version a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    /// The latest version.
    Latest,
    /// A version number.
    Version(i64),
    /// The version current at an instant (ISO-8601 text).
    Timestamp(String),
    /// A version the caller was already given (page and refresh tokens, `startingVersion`
    /// ranges validated elsewhere): no history gate, but it must exist.
    Pinned(u64),
}

/// Names a table in a request path.
#[derive(Debug, Clone, Copy)]
pub struct TableRef<'a> {
    /// Share name.
    pub share: &'a str,
    /// Schema name.
    pub schema: &'a str,
    /// Table name.
    pub table: &'a str,
}

/// An authorized table at a resolved version, with the negotiated format and head lines.
pub(crate) struct Opened {
    pub(crate) resolved: Resolved,
    pub(crate) format: ResponseFormat,
    pub(crate) head: [Bytes; 2],
}

/// A resolved table version.
pub(crate) struct Resolved {
    pub(crate) snapshot: SnapshotRef,
    pub(crate) info: Arc<TableInfo>,
    /// Commit timestamp, set for time-travel requests.
    pub(crate) time_travel_timestamp: Option<i64>,
    pub(crate) time_travel: bool,
}

fn history_disabled(table: &SharedTable) -> ServiceError {
    ServiceError::InvalidParameter(format!(
        "Reading table by version or timestamp is not supported because history sharing is not \
         enabled on table: {}",
        table.qualified_name()
    ))
}

fn below_floor(table: &SharedTable) -> ServiceError {
    ServiceError::InvalidParameter(format!(
        "You can only query table data since version {}.",
        table.start_version
    ))
}

impl Service {
    /// The single authorization step for table operations: resolves the table and checks the
    /// caller's grant. Unknown and ungranted tables get the same 404.
    pub(crate) async fn authorize(
        &self,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<Authorized, ServiceError> {
        let missing = || {
            ServiceError::NotFound(format!(
                "Table '{share}.{schema}.{table}' does not exist, please contact your share \
                 provider for further information."
            ))
        };
        let found = self
            .inner
            .catalog
            .get_table(share, schema, table)
            .await?
            .ok_or_else(missing)?;
        authorize_table(principal, found).map_err(|_| missing())
    }

    /// The common steps of metadata reads after authorization: resolve the version (history
    /// gate), negotiate the format, and build the protocol and metaData lines.
    pub(crate) async fn open_table(
        &self,
        auth: &Authorized,
        spec: VersionSpec,
        caps: &Capabilities,
    ) -> Result<Opened, ServiceError> {
        let resolved = self.resolve(auth, spec).await?;
        let format = format::negotiate(caps, &resolved.info, auth.table())?;
        let head = format::head_lines(format, &resolved.info, auth.table(), None, None)?;
        Ok(Opened {
            resolved,
            format,
            head,
        })
    }

    /// Loads the latest snapshot of an authorized table.
    pub(crate) async fn latest(&self, auth: &Authorized) -> Result<Resolved, ServiceError> {
        self.resolve(auth, VersionSpec::Latest).await
    }

    /// Resolves `spec` for an authorized table, applying the history gate.
    pub(crate) async fn resolve(
        &self,
        auth: &Authorized,
        spec: VersionSpec,
    ) -> Result<Resolved, ServiceError> {
        let table = auth.table().clone();
        let name = table.qualified_name();
        let gated = matches!(spec, VersionSpec::Version(_) | VersionSpec::Timestamp(_));
        if gated && !table.history_shared {
            return Err(history_disabled(&table));
        }
        if let VersionSpec::Version(v) = spec {
            if v < 0 {
                return Err(ServiceError::InvalidParameter(
                    "table version cannot be negative.".to_owned(),
                ));
            }
            if v < table.start_version {
                return Err(below_floor(&table));
            }
        }
        let timestamp_ms = match &spec {
            VersionSpec::Timestamp(text) => Some(parse_timestamp(text).map_err(|e| {
                ServiceError::InvalidParameter(format!("Invalid startingTimestamp: {e}"))
            })?),
            _ => None,
        };
        let root = table.location.url().clone();
        let time_travel = gated;
        self.blocking(move |reader| {
            let err = |e| ServiceError::from_delta(e, &name);
            let latest = reader.latest(&root).map_err(err)?;
            let (snapshot, tt_ts) = match spec {
                VersionSpec::Latest => (latest, None),
                VersionSpec::Pinned(v) if v == latest.version() => (latest, None),
                VersionSpec::Pinned(v) => {
                    if v > latest.version() {
                        return Err(ServiceError::InvalidParameter(format!(
                            "Cannot load table version {v} as the latest version is {}.",
                            latest.version()
                        )));
                    }
                    (reader.at_version(&root, v).map_err(err)?, None)
                }
                VersionSpec::Version(v) => {
                    let v = v as u64;
                    if v > latest.version() {
                        return Err(ServiceError::InvalidParameter(format!(
                            "Cannot load table version {v} as the latest version is {}.",
                            latest.version()
                        )));
                    }
                    let ts = reader.timeline(&latest).map_err(err)?.timestamp_of(v);
                    (reader.at_version(&root, v).map_err(err)?, ts)
                }
                VersionSpec::Timestamp(text) => {
                    let ts = timestamp_ms.unwrap_or_default();
                    let timeline = reader.timeline(&latest).map_err(err)?;
                    let (Some(first), Some(last)) = (timeline.earliest(), timeline.latest()) else {
                        return Err(ServiceError::Internal(format!(
                            "table '{name}' has no commit files"
                        )));
                    };
                    if ts < first.timestamp_ms {
                        return Err(ServiceError::InvalidParameter(format!(
                            "The provided timestamp ({text}) is before the earliest available \
                             version {}. Please use a timestamp greater than or equal to {}.",
                            first.version,
                            format_ms(first.timestamp_ms)
                        )));
                    }
                    if ts > last.timestamp_ms {
                        return Err(ServiceError::InvalidParameter(format!(
                            "The provided timestamp ({text}) is after the latest available \
                             version {}. Please use a timestamp less than or equal to {}.",
                            last.version,
                            format_ms(last.timestamp_ms)
                        )));
                    }
                    let commit = timeline.last_at_or_before(ts).unwrap_or(first);
                    if (commit.version as i64) < table.start_version {
                        return Err(below_floor(&table));
                    }
                    (
                        reader.at_version(&root, commit.version).map_err(err)?,
                        Some(commit.timestamp_ms),
                    )
                }
            };
            let info = reader.info(&snapshot).map_err(err)?;
            Ok(Resolved {
                time_travel,
                snapshot,
                info,
                time_travel_timestamp: tt_ts,
            })
        })
        .await
    }

    /// `GET .../version`: the latest version, or with `startingTimestamp` the earliest version
    /// committed at or after that instant (the earliest available version for instants before
    /// the first commit).
    pub async fn get_table_version(
        &self,
        principal: &Principal,
        t: TableRef<'_>,
        starting_timestamp: Option<&str>,
    ) -> Result<u64, ServiceError> {
        let auth = self
            .authorize(principal, t.share, t.schema, t.table)
            .await?;
        let Some(text) = starting_timestamp else {
            return Ok(self.latest(&auth).await?.snapshot.version());
        };
        let t = auth.table().clone();
        if !t.history_shared {
            return Err(history_disabled(&t));
        }

        let ts = parse_timestamp(text).map_err(|e| {
            ServiceError::InvalidParameter(format!("Invalid startingTimestamp: {e}"))
        })?;
        let root = t.location.url().clone();
        let name = t.qualified_name();
        let text = text.to_owned();
        let version = self
            .blocking(move |reader| {
                let err = |e| ServiceError::from_delta(e, &name);
                let latest = reader.latest(&root).map_err(err)?;
                let timeline = reader.timeline(&latest).map_err(err)?;
                match timeline.first_at_or_after(ts) {
                    Some(c) => Ok(c.version),
                    None => {
                        let last = timeline.latest();
                        Err(ServiceError::InvalidParameter(format!(
                            "The provided timestamp ({text}) is after the latest available \
                             version {}. Please use a timestamp less than or equal to {}.",
                            last.map_or(0, |c| c.version),
                            last.map_or_else(String::new, |c| format_ms(c.timestamp_ms))
                        )))
                    }
                }
            })
            .await?;
        if (version as i64) < t.start_version {
            return Err(below_floor(&t));
        }
        Ok(version)
    }
}
