//! Profile files handed to recipients (version 1, accepted by both stock clients).

use serde::{Deserialize, Serialize};

/// A version-1 Delta Sharing profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileV1 {
    /// Always 1.
    pub share_credentials_version: u32,
    /// The sharing endpoint URL (including the prefix, e.g. `/delta-sharing`).
    pub endpoint: String,
    /// The recipient's bearer token.
    pub bearer_token: String,
    /// ISO-8601 expiry of the token, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
}
