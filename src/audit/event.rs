//! One audit event. Never holds a token, a signature or a signed URL: only token display
//! prefixes and request parameters that shape the answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happened. Field order is the canonical encoding (it is hashed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Event id (UUID).
    pub id: String,
    /// Time (ms since the epoch).
    pub at_ms: i64,
    /// Request id (also in the `x-request-id` response header).
    pub request_id: String,
    /// `list`, `metadata`, `version`, `query`, `changes`, `async_query`, `file`,
    /// `temporary_credentials`, `activation`, `admin`.
    pub kind: String,
    /// HTTP method.
    pub method: String,
    /// Route template (`/shares/{share}/...`).
    pub route: String,
    /// Recipient name (or admin actor), when authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Display prefix of the token used (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_prefix: Option<String>,
    /// Client address (after trusted-proxy handling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// User agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Share, schema and table of the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Table version answered (`Delta-Table-Version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_version: Option<i64>,
    /// Query-string parameters that shape the answer (`version`, `timestamp`,
    /// `startingVersion`, `maxResults`, ...); page tokens are reduced to their presence.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// HTTP status.
    pub status: u16,
    /// Protocol error code, for errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Handling time (ms): to the end of a streamed body, else to the response head.
    pub duration_ms: i64,
    /// Files whose URLs were handed out (queries and change feeds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Bytes of those files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The streamed body did not complete (client gone or a failure mid-stream).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}
