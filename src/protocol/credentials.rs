//! `POST .../temporary-table-credentials` (directory access): request and single-line answer.

use serde::{Deserialize, Serialize};

/// Optional request body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TemporaryCredentialsRequest {
    /// The table root or a location under it (default: the table root).
    #[serde(default)]
    pub location: Option<String>,
}

/// AWS session credentials.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwsTempCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
}

/// An Azure SAS token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AzureSas {
    /// The token (query string).
    pub sas_token: String,
}

/// A GCP OAuth token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GcpOauthToken {
    /// The token.
    pub oauth_token: String,
}

/// The credentials: exactly one of the three kinds.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryCredentials {
    /// The location they are valid for.
    pub location: String,
    /// AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_temp_credentials: Option<AwsTempCredentials>,
    /// Azure (a directory SAS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_user_delegation_sas: Option<AzureSas>,
    /// GCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_oauth_token: Option<GcpOauthToken>,
    /// Expiry, ms since the epoch.
    pub expiration_time: i64,
}

/// `{"credentials": {...}}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TemporaryCredentialsResponse {
    /// The credentials.
    pub credentials: TemporaryCredentials,
}
