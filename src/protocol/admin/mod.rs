//! Wire types of the admin API, shaped after Unity Catalog's sharing API (snake_case JSON) so
//! that the Databricks SDKs can drive Lakeshare. Tables, shares and the Lakeshare extensions
//! (policy plans, recipient previews) are in [`objects`].

pub mod objects;
pub use objects::*;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Admin API error body (Unity spelling: `error_code`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminError {
    /// `RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, `RESOURCE_ALREADY_EXISTS`, ...
    pub error_code: String,
    /// What was wrong.
    pub message: String,
}

/// `{"properties": {...}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PropertiesKvPairs {
    /// Recipient properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// `{"allowed_ip_addresses": [...]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpAccessList {
    /// Allowed addresses or CIDRs (empty = any).
    #[serde(default)]
    pub allowed_ip_addresses: Vec<String>,
}

/// A recipient token as listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecipientTokenInfo {
    /// Token id (its display prefix; `activation` for a pending activation link).
    pub id: String,
    /// One-time link that issues the token (only right after create or rotate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_url: Option<String>,
    /// Creation time, ms.
    pub created_at: i64,
    /// Expiry, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<i64>,
}

/// A recipient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecipientInfo {
    /// Name.
    pub name: String,
    /// Always `TOKEN`.
    pub authentication_type: String,
    /// Whether a token has been issued.
    pub activated: bool,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Creation time, ms.
    pub created_at: i64,
    /// Properties.
    pub properties_kvpairs: PropertiesKvPairs,
    /// IP allow list.
    pub ip_access_list: IpAccessList,
    /// Tokens (never the secret).
    pub tokens: Vec<RecipientTokenInfo>,
    /// Lakeshare extension: activation links not yet redeemed (never their codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_activation_links: Vec<PendingActivationLink>,
    /// Lakeshare extension: granted shares with their grant expiries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntry>,
}

/// An activation link not yet redeemed (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingActivationLink {
    /// Creation time, ms.
    pub created_at: i64,
    /// When the link stops working, ms.
    pub expiration_time: i64,
    /// Expiry of the token it would issue, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expiration_time: Option<i64>,
}

/// A granted share and its expiry (Lakeshare extension).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantEntry {
    /// Share name.
    pub share: String,
    /// Grant expiry, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<i64>,
}

/// Body of `POST /recipients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRecipient {
    /// Name.
    pub name: String,
    /// Must be `TOKEN` when given.
    #[serde(default)]
    pub authentication_type: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Properties.
    #[serde(default)]
    pub properties_kvpairs: Option<PropertiesKvPairs>,
    /// IP allow list.
    #[serde(default)]
    pub ip_access_list: Option<IpAccessList>,
    /// Token expiry, ms.
    #[serde(default)]
    pub expiration_time: Option<i64>,
}

/// Body of `PATCH /recipients/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateRecipient {
    /// Renaming is not supported.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Properties (replaces them).
    #[serde(default)]
    pub properties_kvpairs: Option<PropertiesKvPairs>,
    /// IP allow list (replaces it).
    #[serde(default)]
    pub ip_access_list: Option<IpAccessList>,
    /// Token expiry: not changeable by PATCH (refused, never ignored).
    #[serde(default)]
    pub expiration_time: Option<serde_json::Value>,
    /// Owner: not supported (refused, never ignored).
    #[serde(default)]
    pub owner: Option<serde_json::Value>,
}

/// Body of `POST /recipients/{name}/rotate-token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateToken {
    /// Seconds the existing tokens keep working (0 = revoke now).
    #[serde(default)]
    pub existing_token_expire_in_seconds: i64,
}

/// `{"recipients": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListRecipients {
    /// The recipients.
    pub recipients: Vec<RecipientInfo>,
}

/// One grant change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionsChange {
    /// Recipient name.
    pub principal: String,
    /// Privileges to add (`SELECT`).
    #[serde(default)]
    pub add: Vec<String>,
    /// Privileges to remove (`SELECT`).
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Body of `PATCH /shares/{name}/permissions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdatePermissions {
    /// The changes.
    #[serde(default)]
    pub changes: Vec<PermissionsChange>,
}

/// Who holds which privileges.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrivilegeAssignment {
    /// Recipient name.
    pub principal: String,
    /// Privileges (`SELECT`).
    pub privileges: Vec<String>,
}

/// `{"privilege_assignments": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionsList {
    /// Assignments.
    pub privilege_assignments: Vec<PrivilegeAssignment>,
}

/// One share of a recipient's permissions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareToPrivilegeAssignment {
    /// Share name.
    pub share_name: String,
    /// Assignments.
    pub privilege_assignments: Vec<PrivilegeAssignment>,
}

/// `{"permissions_out": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecipientSharePermissions {
    /// Per share.
    pub permissions_out: Vec<ShareToPrivilegeAssignment>,
}

/// One admin token as listed (Lakeshare extension; never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminTokenEntry {
    /// Administrator name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Expiry (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<i64>,
    /// Revocation time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// `{"admin_tokens": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListAdminTokens {
    /// The tokens, newest first.
    pub admin_tokens: Vec<AdminTokenEntry>,
}

/// Body of `POST /api/2.1/lakeshare/admin-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminToken {
    /// Administrator name.
    pub name: String,
    /// Lifetime in seconds (default 90 days; at most 400 days).
    #[serde(default)]
    pub lifetime_seconds: Option<i64>,
}

/// The created token: shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedAdminToken {
    /// The token (the only time it is shown).
    pub token: String,
    /// Its listing entry.
    pub info: AdminTokenEntry,
}
