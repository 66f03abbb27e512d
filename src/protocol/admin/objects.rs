//! Admin wire types for registered tables, shares and their data objects (Unity shapes), and
//! the Lakeshare extensions: policy plans and the "what can recipient R see" preview.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Body of `POST /tables`: registers an external Delta table by location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTable {
    /// Table name inside its schema.
    pub name: String,
    /// Catalog name.
    pub catalog_name: String,
    /// Schema name.
    pub schema_name: String,
    /// Must be `EXTERNAL` when given.
    #[serde(default)]
    pub table_type: Option<String>,
    /// Must be `DELTA` when given.
    #[serde(default)]
    pub data_source_format: Option<String>,
    /// Table root URL (or absolute path).
    pub storage_location: String,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A registered table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableInfo {
    /// Name inside its schema.
    pub name: String,
    /// Catalog.
    pub catalog_name: String,
    /// Schema.
    pub schema_name: String,
    /// `catalog.schema.table`.
    pub full_name: String,
    /// Always `EXTERNAL`.
    pub table_type: String,
    /// Always `DELTA`.
    pub data_source_format: String,
    /// Table root URL.
    pub storage_location: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Registration time, ms.
    pub created_at: i64,
    /// Who registered it.
    pub created_by: String,
}

/// `{"tables": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListTables {
    /// The tables.
    pub tables: Vec<TableInfo>,
}

/// One condition of a partition entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionValue {
    /// Partition column.
    pub name: String,
    /// `EQUAL` or `LIKE`.
    pub op: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Recipient property supplying the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_property_key: Option<String>,
}

/// One partition entry (all conditions must hold).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partition {
    /// The conditions.
    #[serde(default)]
    pub values: Vec<PartitionValue>,
}

/// A data object of a share (requests and responses).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SharedDataObject {
    /// The registered table's `catalog.schema.table` (or, for tables declared by location,
    /// `share.schema.table`).
    pub name: String,
    /// `TABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_object_type: Option<String>,
    /// `schema.table` as recipients see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_as: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_data_sharing_status: Option<String>,
    /// History floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_version: Option<i64>,
    /// Whether the change data feed is shared (it follows history sharing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdf_enabled: Option<bool>,
    /// Partition specification (a file qualifies if it matches any entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<Partition>>,
    /// `ACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One change of `PATCH /shares/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedDataObjectUpdate {
    /// `ADD`, `REMOVE` or `UPDATE`.
    pub action: String,
    /// The data object.
    pub data_object: SharedDataObject,
}

/// Body of `POST /shares`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateShare {
    /// Name.
    pub name: String,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Lakeshare extension: lifetime of the share's pre-signed URLs, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_ttl_seconds: Option<i64>,
    /// Not supported (data stays where it is).
    #[serde(default)]
    pub storage_root: Option<String>,
}

/// Body of `PATCH /shares/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateShare {
    /// New comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Lakeshare extension: new lifetime of pre-signed URLs, seconds (0 = server default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_ttl_seconds: Option<i64>,
    /// Renaming is not supported.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Accepted and ignored.
    #[serde(default)]
    pub owner: Option<String>,
    /// Not supported.
    #[serde(default)]
    pub storage_root: Option<String>,
    /// Data object changes, applied together.
    #[serde(default)]
    pub updates: Vec<SharedDataObjectUpdate>,
}

/// A share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareInfo {
    /// Name.
    pub name: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who owns it: `config`, `api` or `apply` (Lakeshare extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Lifetime of the share's pre-signed URLs, seconds (Lakeshare extension; absent = the
    /// server default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_ttl_seconds: Option<i64>,
    /// Its tables (with `include_shared_data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<SharedDataObject>,
}

/// `{"shares": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListShares {
    /// The shares.
    pub shares: Vec<ShareInfo>,
}

/// One planned change (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlannedChange {
    /// `create`, `update` or `delete`.
    pub action: String,
    /// `share`, `schema`, `table`, `recipient` or `grant`.
    pub object_type: String,
    /// Object name.
    pub name: String,
    /// Field-level differences.
    pub details: Vec<String>,
    /// Whether `apply` needs `allow_delete` for it.
    pub destructive: bool,
    /// One readable line (`+ table s.x.t (...)`).
    pub summary: String,
}

/// Response of the policy plan and apply endpoints (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyPlan {
    /// The changes in the order they apply.
    pub changes: Vec<PlannedChange>,
    /// Whether they were applied.
    pub applied: bool,
    /// Warnings (e.g. a table location that cannot be read now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One file a recipient's query would return (path relative to the table root; never a URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewFile {
    /// Path as in the Delta log.
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// Partition values.
    pub partition_values: BTreeMap<String, Option<String>>,
}

/// One table a recipient can read, with what its latest-snapshot query would return.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviewTable {
    /// Share.
    pub share: String,
    /// Schema.
    pub schema: String,
    /// Table.
    pub name: String,
    /// Table version read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Files the table has at that version.
    pub total_files: usize,
    /// How many files the recipient would get (after its partition filter).
    pub matching_files: usize,
    /// Those files (at most `max_files` of them).
    pub files: Vec<PreviewFile>,
    /// The partition specification applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<Partition>>,
    /// Why the table could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/2.1/lakeshare/recipients/{name}/preview` (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipientPreview {
    /// Recipient.
    pub recipient: String,
    /// Shares it can read now.
    pub shares: Vec<String>,
    /// Tables of those shares.
    pub tables: Vec<PreviewTable>,
}

/// One recorded admin change (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Sequence number.
    pub seq: i64,
    /// When, ms.
    pub at: i64,
    /// Who (`admin:<name>`, `cli:<user>`, `config`, ...).
    pub actor: String,
    /// What (`share.create`, `grant.delete`, ...).
    pub action: String,
    /// On what.
    pub target: String,
    /// Parameters (never a secret).
    pub details: serde_json::Value,
}

/// `GET /api/2.1/lakeshare/changes` (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeLog {
    /// Newest first.
    pub changes: Vec<ChangeRecord>,
}
