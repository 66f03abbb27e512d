//! The raw YAML shape (reference server keys) and the list of known keys.

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawConfig {
    pub(crate) version: Option<serde_yaml::Value>,
    pub(crate) shares: Option<Vec<RawShare>>,
    pub(crate) recipients: Option<Vec<RawRecipient>>,
    #[serde(default)]
    pub(crate) storage: Vec<RawStorage>,
    pub(crate) storage_self_test: Option<bool>,
    pub(crate) audit_signing_key_file: Option<String>,
    pub(crate) audit_fail_closed: Option<bool>,
    pub(crate) audit_checkpoint_every: Option<i64>,
    pub(crate) audit_jsonl_file: Option<String>,
    pub(crate) audit_jsonl_max_bytes: Option<i64>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) anomalies: Option<RawAnomalies>,
    pub(crate) authorization: Option<RawAuthorization>,
    pub(crate) ssl: Option<RawSsl>,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) endpoint: Option<String>,
    pub(crate) pre_signed_url_timeout_seconds: Option<i64>,
    pub(crate) evaluate_predicate_hints: Option<bool>,
    pub(crate) evaluate_json_predicate_hints: Option<bool>,
    pub(crate) evaluate_json_predicate_hints_v2: Option<bool>,
    pub(crate) query_table_page_size_limit: Option<i64>,
    pub(crate) query_table_page_token_ttl_ms: Option<i64>,
    pub(crate) refresh_token_ttl_ms: Option<i64>,
    pub(crate) delta_table_cache_size: Option<i64>,
    pub(crate) url_signing_key_file: Option<String>,
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) async_query_max_concurrent_per_recipient: Option<i64>,
    pub(crate) async_query_result_ttl_seconds: Option<i64>,
    pub(crate) staleness_acceptable: Option<bool>,
    #[allow(dead_code)] // accepted for compatibility; see TOP_LEVEL_KEYS
    pub(crate) request_timeout_seconds: Option<i64>,
    pub(crate) temporary_credential_validity_seconds: Option<i64>,
    pub(crate) connections: Option<RawConnections>,
    pub(crate) public_url: Option<String>,
    pub(crate) metrics_listener: Option<RawMetricsListener>,
}

/// A listener serving only `/metrics`, for scrapers on other hosts (Lakeshare extension).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawMetricsListener {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) bearer_token: RawValue,
}

/// Connection limits of the listeners (Lakeshare extension).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawConnections {
    pub(crate) max_connections: Option<i64>,
    pub(crate) header_read_timeout_seconds: Option<i64>,
    pub(crate) idle_timeout_seconds: Option<i64>,
    pub(crate) body_timeout_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawShare {
    pub(crate) name: String,
    pub(crate) comment: Option<String>,
    pub(crate) pre_signed_url_timeout_seconds: Option<i64>,
    #[serde(default)]
    pub(crate) schemas: Vec<RawSchema>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawSchema {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) tables: Vec<RawTable>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawTable {
    pub(crate) name: String,
    pub(crate) location: String,
    pub(crate) id: Option<String>,
    pub(crate) history_shared: Option<bool>,
    pub(crate) cdf_enabled: Option<bool>,
    pub(crate) start_version: Option<i64>,
    pub(crate) partitions: Option<Vec<crate::domain::partition_filter::Entry>>,
}

/// Storage settings for the tables under one location prefix (Lakeshare extension).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawStorage {
    pub(crate) location: String,
    pub(crate) s3: Option<std::collections::BTreeMap<String, RawValue>>,
    pub(crate) azure: Option<std::collections::BTreeMap<String, RawValue>>,
    pub(crate) gcs: Option<std::collections::BTreeMap<String, RawValue>>,
}

/// A setting: a literal, or a secret read from the environment or a file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawValue {
    Text(String),
    Flag(bool),
    Number(i64),
    Env { env: String },
    File { file: String },
}

/// Global per-recipient limits (Lakeshare extension).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) requests_per_minute: Option<u64>,
    pub(crate) files_per_day: Option<u64>,
    pub(crate) bytes_per_day: Option<u64>,
    pub(crate) concurrent_queries: Option<u64>,
}

/// Anomaly rules and their webhook (Lakeshare extension).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawAnomalies {
    pub(crate) webhook_url: Option<String>,
    pub(crate) volume_factor: Option<f64>,
    pub(crate) volume_min_requests: Option<u64>,
    pub(crate) baseline_minutes: Option<u64>,
    pub(crate) allowed_window: Option<String>,
    pub(crate) probe_threshold: Option<u64>,
}

/// A recipient of a policy file (Lakeshare extension; never a token).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawRecipient {
    pub(crate) name: String,
    pub(crate) comment: Option<String>,
    #[serde(default)]
    pub(crate) properties: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) ip_access_list: Vec<String>,
    #[serde(default)]
    pub(crate) shares: Vec<RawGrant>,
}

/// A granted share: its name, or `{name, expiresAt}` (RFC 3339).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawGrant {
    Name(String),
    Detailed {
        name: String,
        #[serde(rename = "expiresAt")]
        expires_at: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawAuthorization {
    pub(crate) bearer_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawSsl {
    #[serde(default)]
    pub(crate) self_signed: bool,
    pub(crate) certificate_file: Option<String>,
    pub(crate) certificate_key_file: Option<String>,
    pub(crate) certificate_password_file: Option<String>,
}

/// Top-level keys and whether Lakeshare acts on them.
pub(crate) const TOP_LEVEL_KEYS: &[(&str, Support)] = &[
    ("version", Support::Yes),
    ("shares", Support::Yes),
    ("authorization", Support::Yes),
    ("ssl", Support::Yes),
    ("host", Support::Yes),
    ("port", Support::Yes),
    ("endpoint", Support::Yes),
    ("preSignedUrlTimeoutSeconds", Support::Yes),
    (
        "evaluatePredicateHints",
        Support::NotYet("legacy SQL predicateHints are ignored"),
    ),
    ("evaluateJsonPredicateHints", Support::Yes),
    ("evaluateJsonPredicateHintsV2", Support::Yes),
    ("queryTablePageSizeLimit", Support::Yes),
    ("queryTablePageTokenTtlMs", Support::Yes),
    ("refreshTokenTtlMs", Support::Yes),
    ("recipients", Support::Yes),
    ("storage", Support::Yes),
    ("storageSelfTest", Support::Yes),
    ("auditSigningKeyFile", Support::Yes),
    ("auditFailClosed", Support::Yes),
    ("auditCheckpointEvery", Support::Yes),
    ("auditJsonlFile", Support::Yes),
    ("auditJsonlMaxBytes", Support::Yes),
    ("limits", Support::Yes),
    ("anomalies", Support::Yes),
    ("asyncQueryMaxConcurrentPerRecipient", Support::Yes),
    ("asyncQueryResultTtlSeconds", Support::Yes),
    ("deltaTableCacheSize", Support::Yes),
    ("urlSigningKeyFile", Support::Yes),
    ("trustedProxies", Support::Yes),
    (
        "stalenessAcceptable",
        Support::NotYet("every request reads the latest table version"),
    ),
    (
        "requestTimeoutSeconds",
        Support::NotYet("requests are not timed out by the server"),
    ),
    ("temporaryCredentialValiditySeconds", Support::Yes),
    ("connections", Support::Yes),
    ("publicUrl", Support::Yes),
    ("metricsListener", Support::Yes),
];

/// Keys of one table entry.
pub(crate) const TABLE_KEYS: &[&str] = &[
    "name",
    "location",
    "id",
    "historyShared",
    "cdfEnabled",
    "startVersion",
    "partitions",
];
/// Keys of one share entry.
pub(crate) const SHARE_KEYS: &[&str] =
    &["name", "comment", "preSignedUrlTimeoutSeconds", "schemas"];
/// Keys of one recipient entry.
pub(crate) const RECIPIENT_KEYS: &[&str] =
    &["name", "comment", "properties", "ipAccessList", "shares"];
/// Keys of one schema entry.
pub(crate) const SCHEMA_KEYS: &[&str] = &["name", "tables"];
/// Keys of `ssl`.
pub(crate) const SSL_KEYS: &[&str] = &[
    "selfSigned",
    "certificateFile",
    "certificateKeyFile",
    "certificatePasswordFile",
];
/// Keys of `authorization`.
pub(crate) const AUTH_KEYS: &[&str] = &["bearerToken"];

/// Whether a known key has an effect.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Support {
    Yes,
    NotYet(&'static str),
}
