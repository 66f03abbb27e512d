//! Table metadata and protocol of a snapshot, in plain types.

use std::collections::{BTreeMap, HashMap};

use delta_kernel::Snapshot;
use serde::Deserialize;

use super::{DeltaError, Result};

/// The Delta metaData action of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataInfo {
    /// Table id.
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Format.
    pub format: FormatInfo,
    /// Schema string, unmodified.
    pub schema_string: String,
    /// Partition columns as in the log.
    #[serde(default)]
    pub partition_columns: Vec<String>,
    /// Creation time.
    #[serde(default)]
    pub created_time: Option<i64>,
    /// Configuration.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
}

/// Format of a metaData action.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FormatInfo {
    /// Provider (parquet).
    pub provider: String,
    /// Options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The Delta protocol action of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolInfo {
    /// Minimum reader version.
    pub min_reader_version: i32,
    /// Minimum writer version.
    pub min_writer_version: i32,
    /// Reader features.
    #[serde(default)]
    pub reader_features: Option<Vec<String>>,
    /// Writer features.
    #[serde(default)]
    pub writer_features: Option<Vec<String>>,
}

/// Everything the service needs to describe a table version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Snapshot version.
    pub version: u64,
    /// metaData action.
    pub metadata: MetadataInfo,
    /// protocol action.
    pub protocol: ProtocolInfo,
    /// Logical partition column name → key used in `partitionValues` (physical name under
    /// column mapping).
    pub partition_keys: HashMap<String, String>,
    /// Lower-cased logical top-level column name → physical name (empty without column mapping).
    pub physical_names: HashMap<String, String>,
    /// Lower-cased logical column path (dotted for nested struct fields) → Spark type name
    /// (`integer`, `string`, `decimal(10,2)`, `struct`, `array`, `map`, ...).
    pub column_types: HashMap<String, String>,
}

impl TableInfo {
    /// Column mapping mode (`none` when unset).
    pub fn column_mapping_mode(&self) -> &str {
        self.metadata
            .configuration
            .get("delta.columnMapping.mode")
            .map_or("none", String::as_str)
    }

    /// Whether deletion vectors are enabled by table property.
    pub fn deletion_vectors_enabled(&self) -> bool {
        self.metadata
            .configuration
            .get("delta.enableDeletionVectors")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Whether change data feed is enabled.
    pub fn change_data_feed_enabled(&self) -> bool {
        self.metadata
            .configuration
            .get("delta.enableChangeDataFeed")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Reader features, lower-cased (empty below reader version 3).
    pub fn reader_features_lower(&self) -> Vec<String> {
        self.protocol
            .reader_features
            .iter()
            .flatten()
            .map(|f| f.to_ascii_lowercase())
            .collect()
    }
}

/// Extracts the metadata and protocol of `snapshot`.
pub fn table_info(snapshot: &Snapshot) -> Result<TableInfo> {
    let config = snapshot.table_configuration();
    let metadata: MetadataInfo = serde_json::to_value(config.metadata())
        .and_then(serde_json::from_value)
        .map_err(|e| DeltaError::Kernel(format!("unreadable metaData action: {e}")))?;
    let protocol: ProtocolInfo = serde_json::to_value(config.protocol())
        .and_then(serde_json::from_value)
        .map_err(|e| DeltaError::Kernel(format!("unreadable protocol action: {e}")))?;
    let physical_names = physical_names(&metadata.schema_string);
    let column_types = column_types(&metadata.schema_string);
    let partition_keys = metadata
        .partition_columns
        .iter()
        .map(|c| {
            let key = physical_names
                .get(&c.to_lowercase())
                .cloned()
                .unwrap_or_else(|| c.clone());
            (c.clone(), key)
        })
        .collect();
    Ok(TableInfo {
        version: snapshot.version(),
        metadata,
        protocol,
        partition_keys,
        physical_names,
        column_types,
    })
}

/// Top-level logical → physical names from `delta.columnMapping.physicalName` field metadata.
fn physical_names(schema_string: &str) -> HashMap<String, String> {
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema_string) else {
        return HashMap::new();
    };
    schema
        .get("fields")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|field| {
            let name = field.get("name")?.as_str()?;
            let physical = field
                .get("metadata")?
                .get("delta.columnMapping.physicalName")?
                .as_str()?;
            Some((name.to_lowercase(), physical.to_owned()))
        })
        .collect()
}

/// Column paths and their type names, from a Spark-JSON schema.
fn column_types(schema_string: &str) -> HashMap<String, String> {
    fn walk(fields: &serde_json::Value, prefix: &str, out: &mut HashMap<String, String>) {
        for field in fields.as_array().into_iter().flatten() {
            let Some(name) = field.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            let path = if prefix.is_empty() {
                name.to_lowercase()
            } else {
                format!("{prefix}.{}", name.to_lowercase())
            };
            match field.get("type") {
                Some(serde_json::Value::String(t)) => {
                    out.insert(path, t.clone());
                }
                Some(complex) => {
                    let kind = complex.get("type").and_then(|t| t.as_str()).unwrap_or("");
                    if kind == "struct" {
                        walk(&complex["fields"], &path, out);
                    }
                    out.insert(path, kind.to_owned());
                }
                None => {}
            }
        }
    }
    let mut out = HashMap::new();
    if let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema_string) {
        walk(&schema["fields"], "", &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_cover_nested_fields() {
        let t = column_types(
            r#"{"type":"struct","fields":[{"name":"A","type":"integer","nullable":true,"metadata":{}},
            {"name":"s","type":{"type":"struct","fields":[{"name":"x","type":"date","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}}]}"#,
        );
        assert_eq!(t.get("a").map(String::as_str), Some("integer"));
        assert_eq!(t.get("s.x").map(String::as_str), Some("date"));
        assert_eq!(t.get("s").map(String::as_str), Some("struct"));
    }
}
