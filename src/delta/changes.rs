//! File-level changes of a range of commits, for the change data feed and `startingVersion`
//! queries.
//!
//! Commit files are read raw through the kernel engine's storage handler and parsed line by
//! line: the sharing protocol returns the log's actions (add, remove, cdc, metaData, protocol)
//! as recorded, so no column-mapping translation or row materialization happens here.

use std::collections::BTreeMap;
use std::sync::Arc;

use delta_kernel::Engine;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::files::{ActiveFile, DvDescriptor};
use super::info::{MetadataInfo, ProtocolInfo};
use super::{DeltaError, Result};

/// What kind of file action a change entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// An `add` action.
    Add,
    /// A `remove` action.
    Remove,
    /// A `cdc` (change data) action.
    Cdc,
}

/// One file action of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeFile {
    /// add / remove / cdc.
    pub kind: ChangeKind,
    /// The file (path, size, partition values, stats, deletion vector).
    pub file: ActiveFile,
    /// `dataChange` flag as recorded.
    pub data_change: bool,
    /// remove: `deletionTimestamp`.
    pub deletion_timestamp: Option<i64>,
    /// remove: `extendedFileMetadata`.
    pub extended_file_metadata: Option<bool>,
}

/// Everything one commit says that sharing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// Version.
    pub version: u64,
    /// File actions in log order.
    pub files: Vec<ChangeFile>,
    /// metaData action, if the commit changes metadata.
    pub metadata: Option<Arc<MetadataInfo>>,
    /// protocol action, if the commit changes the protocol.
    pub protocol: Option<ProtocolInfo>,
    /// `commitInfo.operation`.
    pub operation: Option<String>,
    /// `commitInfo.operationMetrics`.
    pub operation_metrics: BTreeMap<String, String>,
}

impl Commit {
    /// Whether this is a MERGE that changed no row (it emits no change data).
    pub fn is_noop_merge(&self) -> bool {
        if self.operation.as_deref() != Some("MERGE") {
            return false;
        }
        let zero = |k: &str| self.operation_metrics.get(k).is_some_and(|v| v == "0");
        zero("numTargetRowsInserted")
            && zero("numTargetRowsUpdated")
            && zero("numTargetRowsDeleted")
    }

    /// Whether the commit recorded change data files.
    pub fn has_cdc(&self) -> bool {
        self.files.iter().any(|f| f.kind == ChangeKind::Cdc)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFile {
    path: String,
    #[serde(default)]
    partition_values: BTreeMap<String, Option<String>>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    modification_time: Option<i64>,
    #[serde(default)]
    data_change: Option<bool>,
    #[serde(default)]
    stats: Option<String>,
    #[serde(default)]
    deletion_vector: Option<RawDv>,
    #[serde(default)]
    deletion_timestamp: Option<i64>,
    #[serde(default)]
    extended_file_metadata: Option<bool>,
    #[serde(default)]
    base_row_id: Option<i64>,
    #[serde(default)]
    default_row_commit_version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDv {
    storage_type: String,
    path_or_inline_dv: String,
    #[serde(default)]
    offset: Option<i32>,
    size_in_bytes: i32,
    cardinality: i64,
}

fn to_change(kind: ChangeKind, v: Value) -> Result<ChangeFile> {
    let raw: RawFile = serde_json::from_value(v)
        .map_err(|e| DeltaError::Kernel(format!("invalid file action in commit: {e}")))?;
    Ok(ChangeFile {
        kind,
        data_change: raw.data_change.unwrap_or(kind == ChangeKind::Cdc),
        deletion_timestamp: raw.deletion_timestamp,
        extended_file_metadata: raw.extended_file_metadata,
        file: ActiveFile {
            path: raw.path,
            size: raw.size.unwrap_or(0),
            modification_time: raw.modification_time.unwrap_or(0),
            stats: raw.stats,
            partition_values: raw.partition_values,
            deletion_vector: raw.deletion_vector.map(|d| DvDescriptor {
                storage_type: d.storage_type,
                path_or_inline_dv: d.path_or_inline_dv,
                offset: d.offset,
                size_in_bytes: d.size_in_bytes,
                cardinality: d.cardinality,
            }),
            base_row_id: raw.base_row_id,
            default_row_commit_version: raw.default_row_commit_version,
        },
    })
}

fn parse_commit(version: u64, bytes: &[u8]) -> Result<Commit> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DeltaError::Kernel(format!("commit {version} is not UTF-8: {e}")))?;
    let mut commit = Commit {
        version,
        files: Vec::new(),
        metadata: None,
        protocol: None,
        operation: None,
        operation_metrics: BTreeMap::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let action: serde_json::Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| DeltaError::Kernel(format!("commit {version}: invalid JSON line: {e}")))?;
        for (key, value) in action {
            match key.as_str() {
                "add" => commit.files.push(to_change(ChangeKind::Add, value)?),
                "remove" => commit.files.push(to_change(ChangeKind::Remove, value)?),
                "cdc" => commit.files.push(to_change(ChangeKind::Cdc, value)?),
                "metaData" => {
                    let m: MetadataInfo = serde_json::from_value(value).map_err(|e| {
                        DeltaError::Kernel(format!("commit {version}: invalid metaData: {e}"))
                    })?;
                    commit.metadata = Some(Arc::new(m));
                }
                "protocol" => {
                    commit.protocol = Some(serde_json::from_value(value).map_err(|e| {
                        DeltaError::Kernel(format!("commit {version}: invalid protocol: {e}"))
                    })?);
                }
                "commitInfo" => {
                    commit.operation = value
                        .get("operation")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    if let Some(Value::Object(m)) = value.get("operationMetrics") {
                        commit.operation_metrics = m
                            .iter()
                            .map(|(k, v)| {
                                let s = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                                (k.clone(), s)
                            })
                            .collect();
                    }
                }
                _ => {}
            }
        }
    }
    Ok(commit)
}

/// Reads and parses the commits `start..=end` of the table at `table_root`.
pub fn read_commits(
    engine: &dyn Engine,
    table_root: &Url,
    start: u64,
    end: u64,
) -> Result<Vec<Commit>> {
    let urls = (start..=end)
        .map(|v| {
            table_root
                .join(&format!("_delta_log/{v:020}.json"))
                .map(|u| (v, u))
                .map_err(|e| DeltaError::Kernel(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let slices = urls.iter().map(|(_, u)| (u.clone(), None)).collect();
    let mut out = Vec::with_capacity(urls.len());
    for ((version, _), bytes) in urls
        .iter()
        .zip(engine.storage_handler().read_files(slices)?)
    {
        let bytes = bytes.map_err(|e| DeltaError::VersionNotFound {
            version: *version,
            reason: format!("commit file unreadable: {e}"),
        })?;
        out.push(parse_commit(*version, &bytes)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_and_noop_merges() {
        let text = br#"{"commitInfo":{"operation":"MERGE","operationMetrics":{"numTargetRowsInserted":"0","numTargetRowsUpdated":"0","numTargetRowsDeleted":"0"}}}
{"add":{"path":"a.parquet","partitionValues":{"p":null},"size":3,"modificationTime":1,"dataChange":true}}
{"remove":{"path":"b.parquet","deletionTimestamp":5,"dataChange":true,"extendedFileMetadata":true,"partitionValues":{},"size":4}}
{"cdc":{"path":"_change_data/c.parquet","partitionValues":{},"size":6,"dataChange":false}}
"#;
        let c = parse_commit(3, text).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(c.is_noop_merge());
        assert!(c.has_cdc());
        assert_eq!(c.files.len(), 3);
        assert_eq!(c.files[0].file.partition_values.get("p"), Some(&None));
        assert_eq!(c.files[1].deletion_timestamp, Some(5));
        assert_eq!(c.files[2].kind, ChangeKind::Cdc);
    }
}
