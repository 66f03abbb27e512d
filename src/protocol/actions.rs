//! NDJSON lines of `/metadata` and `/query` responses, in both response formats.
//!
//! Every line is a wrapper object with exactly one key naming the action.

use std::collections::BTreeMap;

use serde::Serialize;

/// Partition values as sent on the wire: string values, `null` for SQL NULL.
pub type PartitionValues = BTreeMap<String, Option<String>>;

/// `{"protocol": ...}` line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProtocolLine<P> {
    /// The payload.
    pub protocol: P,
}

/// Parquet-format protocol payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParquetProtocol {
    /// Always 1.
    pub min_reader_version: i32,
}

/// Delta-format protocol payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaProtocolWrapper {
    /// The table's Delta protocol action, unchanged.
    pub delta_protocol: DeltaProtocol,
    /// Version of a historical protocol line (`includeHistoricalProtocol`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// A Delta protocol action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaProtocol {
    /// Minimum reader version.
    pub min_reader_version: i32,
    /// Minimum writer version.
    pub min_writer_version: i32,
    /// Reader features (reader version 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    /// Writer features (writer version 7).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

/// `{"metaData": ...}` line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetadataLine<M> {
    /// The payload.
    pub meta_data: M,
}

/// `{"provider": "parquet"}` (with options in delta format).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Format {
    /// Always `parquet`.
    pub provider: String,
    /// Format options (delta format only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// Parquet-format metadata payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParquetMetadata {
    /// The Delta table's metadata id.
    pub id: String,
    /// Table name from the Delta metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Table description from the Delta metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"provider":"parquet"}`.
    pub format: Format,
    /// Spark-JSON schema.
    pub schema_string: String,
    /// Partition columns (`[]` if none).
    pub partition_columns: Vec<String>,
    /// Shared configuration (`{}` or `{"enableChangeDataFeed":"true"}`).
    pub configuration: BTreeMap<String, String>,
    /// Version the metadata belongs to (changes-style responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Table size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_files: Option<i64>,
}

/// Delta-format metadata payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaMetadataWrapper {
    /// The table's Delta metaData action, unchanged.
    pub delta_metadata: DeltaMetadata,
    /// Version the metadata belongs to (changes-style responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Table size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_files: Option<i64>,
}

/// A Delta metaData action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaMetadata {
    /// Table id.
    pub id: String,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Format with options.
    pub format: Format,
    /// Schema string, unmodified.
    pub schema_string: String,
    /// Partition columns (physical names as in the log).
    pub partition_columns: Vec<String>,
    /// Full table configuration.
    pub configuration: BTreeMap<String, String>,
    /// Creation time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

/// `{"file": ...}` line, parquet format.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileLine<F> {
    /// The payload.
    pub file: F,
}

/// Parquet-format file payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParquetFile {
    /// Pre-signed URL.
    pub url: String,
    /// Stable file id.
    pub id: String,
    /// Partition values.
    pub partition_values: PartitionValues,
    /// Exact size in bytes.
    pub size: i64,
    /// Stats JSON, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// Commit version (time travel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Commit timestamp in ms (time travel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// When `url` expires, ms since the epoch.
    pub expiration_timestamp: i64,
}

/// Delta-format file payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaFile {
    /// Stable file id.
    pub id: String,
    /// Stable id of the deletion-vector file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_vector_file_id: Option<String>,
    /// Commit version (time travel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Commit timestamp in ms (time travel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// When the URLs expire, ms since the epoch.
    pub expiration_timestamp: i64,
    /// The Delta action with its path replaced by a pre-signed URL.
    pub delta_single_action: DeltaSingleAction,
}

/// One Delta action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum DeltaSingleAction {
    /// An add action.
    Add(DeltaAdd),
    /// A remove action.
    Remove(DeltaRemove),
    /// A change-data action (Delta's key is `cdc`).
    Cdc(DeltaCdc),
}

/// A Delta remove action whose `path` is a pre-signed URL.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaRemove {
    /// Pre-signed URL of the data file.
    pub path: String,
    /// Deletion time in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    /// Data change flag.
    pub data_change: bool,
    /// Whether partition values, size and stats are present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    /// Partition values as in the log.
    pub partition_values: PartitionValues,
    /// Size in bytes.
    pub size: i64,
    /// Stats JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// Deletion vector descriptor (file DVs rewritten to `p` with a pre-signed URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_vector: Option<DeletionVector>,
    /// Row tracking: base row id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_row_id: Option<i64>,
    /// Row tracking: default row commit version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_row_commit_version: Option<i64>,
}

/// A Delta cdc action whose `path` is a pre-signed URL.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaCdc {
    /// Pre-signed URL of the change-data file.
    pub path: String,
    /// Partition values as in the log.
    pub partition_values: PartitionValues,
    /// Size in bytes.
    pub size: i64,
    /// Always false.
    pub data_change: bool,
}

/// A parquet-format `add`, `remove` or `cdf` payload (change and `startingVersion` queries).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParquetChangeFile {
    /// Pre-signed URL.
    pub url: String,
    /// Stable file id.
    pub id: String,
    /// Partition values.
    pub partition_values: PartitionValues,
    /// Exact size in bytes.
    pub size: i64,
    /// Stats JSON (add only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// When `url` expires, ms since the epoch.
    pub expiration_timestamp: i64,
    /// Commit timestamp, ms.
    pub timestamp: i64,
    /// Commit version.
    pub version: i64,
}

/// A parquet-format change line: exactly one of the keys is set.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ParquetChangeLine {
    /// A data-changing added file.
    Add(ParquetChangeFile),
    /// A change-data file.
    Cdf(ParquetChangeFile),
    /// A data-changing removed file.
    Remove(ParquetChangeFile),
}

/// `{"endStreamAction": ...}`: always the last line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EndStreamLine {
    /// The payload.
    pub end_stream_action: EndStreamAction,
}

/// End-of-stream information.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EndStreamAction {
    /// Token for re-running the same latest-snapshot query with fresh URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Token of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    /// Earliest expiry of the URLs in this response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_url_expiration_timestamp: Option<i64>,
    /// Set when the query failed after the response started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// HTTP status the client should act on, with `error_message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status_error_code: Option<u16>,
}

/// `{"queryStatus": ...}`: the answer to an async query that has not finished.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatusLine {
    /// The payload.
    pub query_status: QueryStatus,
}

/// Status of an async query.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatus {
    /// Opaque query id.
    pub query_id: String,
    /// `pending` or `failed`.
    pub status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// A Delta add action whose `path` is a pre-signed URL.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeltaAdd {
    /// Pre-signed URL of the data file.
    pub path: String,
    /// Partition values as in the log.
    pub partition_values: PartitionValues,
    /// Size in bytes.
    pub size: i64,
    /// Modification time in ms.
    pub modification_time: i64,
    /// Always true for snapshot files.
    pub data_change: bool,
    /// Stats JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    /// Deletion vector descriptor (file DVs rewritten to `p` with a pre-signed URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_vector: Option<DeletionVector>,
    /// Row tracking: base row id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_row_id: Option<i64>,
    /// Row tracking: default row commit version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_row_commit_version: Option<i64>,
}

/// A deletion vector descriptor.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeletionVector {
    /// `p` (absolute URL) or `i` (inline).
    pub storage_type: String,
    /// The URL or the inline bitmap.
    pub path_or_inline_dv: String,
    /// Offset in the DV file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i32>,
    /// Size of the serialized DV.
    pub size_in_bytes: i32,
    /// Number of deleted rows.
    pub cardinality: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_protocol_line_shape() {
        let line = ProtocolLine {
            protocol: ParquetProtocol {
                min_reader_version: 1,
            },
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap_or_default(),
            r#"{"protocol":{"minReaderVersion":1}}"#
        );
    }

    #[test]
    fn parquet_file_line_keeps_null_partition_values_and_stats_as_string() {
        let mut pv = PartitionValues::new();
        pv.insert("a".into(), None);
        let line = FileLine {
            file: ParquetFile {
                url: "u".into(),
                id: "i".into(),
                partition_values: pv,
                size: 3,
                stats: Some(r#"{"numRecords":1}"#.into()),
                version: None,
                timestamp: None,
                expiration_timestamp: 9,
            },
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap_or_default(),
            r#"{"file":{"url":"u","id":"i","partitionValues":{"a":null},"size":3,"stats":"{\"numRecords\":1}","expirationTimestamp":9}}"#
        );
    }
}
