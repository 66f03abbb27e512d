//! Validation of the raw config into [`Config`], with warnings for keys that have no effect.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::raw::{
    AUTH_KEYS, RECIPIENT_KEYS, RawConfig, RawConnections, RawGrant, RawRecipient, SCHEMA_KEYS,
    SHARE_KEYS, SSL_KEYS, Support, TABLE_KEYS, TOP_LEVEL_KEYS,
};
use crate::catalog::{DeclaredState, GrantDecl, RecipientDecl, SchemaDecl, ShareDecl, TableDecl};
use crate::domain::partition_filter::PartitionSpec;
use crate::storage::location::TableLocation;
use crate::storage::temp_creds::STS_MIN_SECONDS;

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslConfig {
    /// Generate a self-signed certificate at start.
    SelfSigned,
    /// PEM certificate chain and key files.
    Files {
        /// Certificate chain.
        certificate: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder of the config file (relative paths are resolved against it).
    pub base_dir: PathBuf,
    /// Listen host.
    pub host: String,
    /// Listen port (0 = any free port).
    pub port: u16,
    /// Endpoint prefix, `/delta-sharing` by default; no trailing slash.
    pub endpoint: String,
    /// URL lifetime in seconds.
    pub url_ttl_seconds: i64,
    /// Evaluate JSON hints.
    pub evaluate_json_hints: bool,
    /// Evaluate JSON hints on stats.
    pub evaluate_json_hints_v2: bool,
    /// Snapshot cache entries.
    pub cache_size: usize,
    /// Reference-style global bearer token.
    pub bearer_token: Option<String>,
    /// TLS.
    pub ssl: Option<SslConfig>,
    /// Lakeshare extension: a file holding the URL/token signing key (first line, current) and
    /// previous keys (further lines, accepted for one URL lifetime after start). Without it,
    /// keys are generated and kept in the state store.
    pub url_signing_key_file: Option<PathBuf>,
    /// `queryTablePageSizeLimit`.
    pub page_size_limit: usize,
    /// `queryTablePageTokenTtlMs`.
    pub page_token_ttl_ms: i64,
    /// `refreshTokenTtlMs`.
    pub refresh_token_ttl_ms: i64,
    /// Lakeshare extension `asyncQueryMaxConcurrentPerRecipient`.
    pub async_max_concurrent_per_recipient: usize,
    /// Lakeshare extension `asyncQueryResultTtlSeconds`, in ms.
    pub async_result_ttl_ms: i64,
    /// Lakeshare extension `trustedProxies`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Shared objects (empty when the file has no `shares` section).
    pub shares: Vec<ShareDecl>,
    /// What the file declares as policy: `shares` and `recipients` sections, each `None`
    /// when absent (then `lakeshare apply` leaves that kind alone).
    pub declared: DeclaredState,
    /// Lakeshare extension `storage`: settings per cloud location prefix.
    pub storage: Vec<crate::storage::cloud::StorageRule>,
    /// Lakeshare extension `auditSigningKeyFile`: the Ed25519 seed (base64) that signs audit
    /// checkpoints (or env `LAKESHARE_AUDIT_SIGNING_KEY`); never stored in the database.
    pub audit_signing_key_file: Option<PathBuf>,
    /// Lakeshare extension `auditFailClosed` (default true): refuse requests that cannot be
    /// audited.
    pub audit_fail_closed: bool,
    /// Lakeshare extension `auditCheckpointEvery` (default 1000 events; also every 30 s and at
    /// shutdown).
    pub audit_checkpoint_every: i64,
    /// Lakeshare extension `auditJsonlFile`: also append every audit record to this file
    /// (rotated at `auditJsonlMaxBytes`, default 100 MiB).
    pub audit_jsonl: Option<(PathBuf, u64)>,
    /// Lakeshare extension `anomalies`: rules and the webhook URL their alerts go to.
    pub anomalies: Option<(crate::audit::anomaly::AnomalyRules, Option<String>)>,
    /// Lakeshare extension `limits`: global per-recipient limits.
    pub limits: crate::domain::limits::Limits,
    /// `temporaryCredentialValiditySeconds`: lifetime of directory-access credentials.
    pub temp_credential_validity_s: i64,
    /// Lakeshare extension `storageSelfTest` (default true): at start, open every cloud
    /// table's log and sign one URL per storage location, refusing to start on failure.
    pub storage_self_test: bool,
    /// Lakeshare extension `connections`: limits of every listener.
    pub connections: ConnectionLimits,
    /// Lakeshare extension `publicUrl`: the external URL of the server root (scheme, host,
    /// optional port and path; no trailing slash), used for profiles, activation links and
    /// file URLs.
    pub public_url: Option<String>,
    /// Lakeshare extension `metricsListener`: `/metrics` on another address, for scrapers on
    /// other hosts, behind a bearer token (`bearerToken: {env: NAME}` or `{file: PATH}`).
    pub metrics_listener: Option<MetricsListener>,
    /// Warnings to show the operator.
    pub warnings: Vec<String>,
}

/// Where and with which token `/metrics` is served to other hosts.
#[derive(Clone)]
pub struct MetricsListener {
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// SHA-256 of the bearer token scrapers present.
    pub token_hash: [u8; 32],
}

impl std::fmt::Debug for MetricsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsListener")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Limits applied to every accepted connection (recipient, admin and TLS listeners).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections per listener; further clients wait in the accept queue.
    pub max_connections: usize,
    /// A request's headers must arrive within this time.
    pub header_read_timeout: std::time::Duration,
    /// A connection with no request in flight and no traffic is closed after this time.
    pub idle_timeout: std::time::Duration,
    /// A request's body must arrive within this time.
    pub body_timeout: std::time::Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_read_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(75),
            body_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Checks a `publicUrl` (config key or `--public-url`): `http` or `https`, a host, no query or
/// fragment. Returns it without a trailing slash.
pub fn check_public_url(u: &str) -> Result<String, String> {
    let parsed =
        url::Url::parse(u.trim()).map_err(|e| format!("publicUrl '{u}' is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
    {
        return Err(format!(
            "publicUrl '{u}' must be http(s)://host[:port][/path], the address recipients reach \
             this server at (without the endpoint prefix, query or fragment)"
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn connection_limits(raw: Option<RawConnections>) -> Result<ConnectionLimits, String> {
    let d = ConnectionLimits::default();
    let Some(c) = raw else { return Ok(d) };
    let secs = |key: &str, v: Option<i64>, default: std::time::Duration| {
        positive(&format!("connections.{key}"), v, default.as_secs() as i64)
            .map(|s| std::time::Duration::from_secs(s as u64))
    };
    Ok(ConnectionLimits {
        max_connections: positive(
            "connections.maxConnections",
            c.max_connections,
            d.max_connections as i64,
        )? as usize,
        header_read_timeout: secs(
            "headerReadTimeoutSeconds",
            c.header_read_timeout_seconds,
            d.header_read_timeout,
        )?,
        idle_timeout: secs("idleTimeoutSeconds", c.idle_timeout_seconds, d.idle_timeout)?,
        body_timeout: secs("bodyTimeoutSeconds", c.body_timeout_seconds, d.body_timeout)?,
    })
}

fn check_name(kind: &str, name: &str, _allow_dot: bool) -> Result<(), String> {
    use crate::domain::names::{NameKind, check_name as check};
    let kind = match kind {
        "share" => NameKind::Share,
        "schema" => NameKind::Schema,
        "table" => NameKind::Table,
        _ => NameKind::Recipient,
    };
    check(kind, name)
}

fn unknown_keys(value: &Value, known: &[&str], where_: &str, warnings: &mut Vec<String>) {
    if let Value::Mapping(map) = value {
        for key in map.keys() {
            let k = key.as_str().unwrap_or("<non-string key>");
            if !known.contains(&k) {
                warnings.push(format!("unknown config key '{k}' in {where_} is ignored"));
            }
        }
    }
}

/// A policy file never carries secrets: token-like keys in a recipient are refused.
fn refuse_secrets(doc: &Value) -> Result<(), String> {
    for r in doc
        .get("recipients")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        for key in ["token", "bearerToken", "tokens", "secret", "password"] {
            if r.get(key).is_some() {
                return Err(format!(
                    "recipient '{}' has a '{key}' key: policy files never hold secrets; tokens \
                     are issued with activation links (`lakeshare recipient link NAME`)",
                    r.get("name").and_then(Value::as_str).unwrap_or("?")
                ));
            }
        }
    }
    Ok(())
}

fn collect_warnings(doc: &Value) -> Vec<String> {
    let mut w = Vec::new();
    if let Value::Mapping(map) = doc {
        for (key, val) in map {
            let k = key.as_str().unwrap_or("<non-string key>");
            match TOP_LEVEL_KEYS.iter().find(|(name, _)| *name == k) {
                None => w.push(format!("unknown config key '{k}' is ignored")),
                Some((_, Support::NotYet(why))) => w.push(format!(
                    "config key '{k}' is not supported yet and has no effect: {why}"
                )),
                Some((_, Support::Yes)) => {}
            }
            let _ = val;
        }
        if let Some(shares) = map.get("shares").and_then(Value::as_sequence) {
            for share in shares {
                unknown_keys(share, SHARE_KEYS, "a share", &mut w);
                for schema in share
                    .get("schemas")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                {
                    unknown_keys(schema, SCHEMA_KEYS, "a schema", &mut w);
                    for table in schema
                        .get("tables")
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                    {
                        unknown_keys(table, TABLE_KEYS, "a table", &mut w);
                    }
                }
            }
        }
        for r in map
            .get("recipients")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            unknown_keys(r, RECIPIENT_KEYS, "a recipient", &mut w);
        }
        if let Some(ssl) = map.get("ssl") {
            unknown_keys(ssl, SSL_KEYS, "ssl", &mut w);
        }
        if let Some(auth) = map.get("authorization") {
            unknown_keys(auth, AUTH_KEYS, "authorization", &mut w);
        }
    }
    w
}

fn positive(name: &str, v: Option<i64>, default: i64) -> Result<i64, String> {
    match v {
        None => Ok(default),
        Some(n) if n > 0 => Ok(n),
        Some(n) => Err(format!("{name} must be positive, got {n}")),
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let base_dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, &base_dir).map_err(|e| format!("{}: {e}", path.display()))
}

/// Validates config text; relative paths resolve against `base_dir`.
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, String> {
    parse_in(text, Some(base_dir))
}

/// Validates a policy file received by the admin API: table locations must be absolute
/// (there is no file to resolve relative paths against).
pub fn parse_policy(text: &str) -> Result<Config, String> {
    parse_in(text, None)
}

/// Largest nesting bound (see [`yaml_nesting_bound`]) of a config or policy document; real
/// ones stay under 30.
const MAX_YAML_NESTING_BOUND: usize = 256;

/// An upper bound of a YAML document's nesting depth, found without parsing it (YAML parsing
/// time grows with the square of the depth: a 1 MiB document 64k levels deep takes seconds).
/// Per line: indentation columns, plus two per block-sequence indicator (`- - x` nests on one
/// line), plus the flow brackets (`[`, `{`) still open, outside quoted text.
fn yaml_nesting_bound(text: &str) -> usize {
    let mut flow: usize = 0;
    let mut deepest: usize = 0;
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut rest = &line[indent..];
        let mut dashes = 0;
        while let Some(r) = rest
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            dashes += 1;
            rest = r.trim_start_matches(' ');
        }
        let mut quote: Option<char> = None;
        let mut line_max = flow;
        for c in rest.chars() {
            match (quote, c) {
                (None, '#') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '[' | '{') => {
                    flow += 1;
                    line_max = line_max.max(flow);
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
        }
        deepest = deepest.max(indent + 2 * dashes + line_max);
    }
    deepest
}

fn parse_in(text: &str, base: Option<&Path>) -> Result<Config, String> {
    let base_dir = base.unwrap_or(Path::new("/"));
    let depth = yaml_nesting_bound(text);
    if depth > MAX_YAML_NESTING_BOUND {
        return Err(format!(
            "the YAML document is nested too deeply (about {depth} levels or indentation \
             columns; at most {} accepted)",
            MAX_YAML_NESTING_BOUND
        ));
    }
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    refuse_secrets(&doc)?;
    let mut warnings = collect_warnings(&doc);
    let mut raw: RawConfig =
        serde_yaml::from_value(doc).map_err(|e| format!("invalid config: {e}"))?;
    match &raw.version {
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        Some(other) => {
            return Err(format!(
                "unsupported config 'version' {other:?}: only version 1 is supported"
            ));
        }
        None => return Err("missing 'version: 1' at the top of the config".to_owned()),
    }
    let shares_declared = raw.shares.is_some();
    let mut shares: Vec<ShareDecl> = Vec::new();
    for share in raw.shares.unwrap_or_default() {
        check_name("share", &share.name, true)?;
        if shares
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&share.name))
        {
            return Err(format!("share '{}' is declared twice", share.name));
        }
        let mut schemas: Vec<SchemaDecl> = Vec::new();
        for schema in share.schemas {
            check_name("schema", &schema.name, false)?;
            if schemas
                .iter()
                .any(|s| s.name.eq_ignore_ascii_case(&schema.name))
            {
                return Err(format!(
                    "schema '{}.{}' is declared twice",
                    share.name, schema.name
                ));
            }
            let mut tables: Vec<TableDecl> = Vec::new();
            for table in schema.tables {
                check_name("table", &table.name, false)?;
                let qualified = format!("{}.{}.{}", share.name, schema.name, table.name);
                if tables
                    .iter()
                    .any(|t| t.name.eq_ignore_ascii_case(&table.name))
                {
                    return Err(format!("table '{qualified}' is declared twice"));
                }
                if base.is_none()
                    && !table.location.contains("://")
                    && !table.location.starts_with('/')
                {
                    return Err(format!(
                        "table '{qualified}': relative location '{}' cannot be resolved by a \
                         remote server; use an absolute path or a URL",
                        table.location
                    ));
                }
                let location = TableLocation::parse(&table.location, base_dir)
                    .map_err(|e| format!("table '{qualified}': {e}"))?;
                let start_version = table.start_version.unwrap_or(0);
                if start_version < 0 {
                    return Err(format!(
                        "table '{qualified}': startVersion cannot be negative"
                    ));
                }
                let partition_filter = match table.partitions {
                    None => None,
                    Some(entries) => {
                        let spec = PartitionSpec { entries };
                        spec.validate(None)
                            .map_err(|e| format!("table '{qualified}': {e}"))?;
                        Some(serde_json::to_string(&spec).map_err(|e| e.to_string())?)
                    }
                };
                tables.push(TableDecl {
                    partition_filter,
                    name: table.name,
                    id: table.id,
                    location: location.url().to_string(),
                    history_shared: table.history_shared.or(table.cdf_enabled).unwrap_or(false),
                    start_version,
                    source_name: None,
                });
            }
            schemas.push(SchemaDecl {
                name: schema.name,
                tables,
            });
        }
        let url_ttl_seconds = share.pre_signed_url_timeout_seconds;
        if let Some(t) = url_ttl_seconds {
            crate::domain::model::check_url_ttl(
                &format!("share '{}': preSignedUrlTimeoutSeconds", share.name),
                t,
            )?;
        }
        shares.push(ShareDecl {
            url_ttl_seconds,
            name: share.name,
            comment: share.comment,
            schemas,
        });
    }
    let storage = super::storage::rules(std::mem::take(&mut raw.storage), base_dir)?;
    let recipients = raw
        .recipients
        .map(|list| recipients(list, shares_declared.then_some(&shares)))
        .transpose()?;
    let declared = DeclaredState {
        shares: shares_declared.then(|| shares.clone()),
        recipients,
    };
    let ssl = match raw.ssl {
        None => None,
        Some(ssl) => {
            if ssl.certificate_password_file.is_some() {
                return Err(
                    "ssl.certificatePasswordFile is not supported: provide an unencrypted PEM key \
                     in certificateKeyFile"
                        .to_owned(),
                );
            }
            match (
                ssl.self_signed,
                ssl.certificate_file,
                ssl.certificate_key_file,
            ) {
                (true, _, _) => Some(SslConfig::SelfSigned),
                (false, Some(cert), Some(key)) => Some(SslConfig::Files {
                    certificate: base_dir.join(cert),
                    key: base_dir.join(key),
                }),
                _ => {
                    return Err(
                        "ssl needs 'selfSigned: true' or both 'certificateFile' and \
                         'certificateKeyFile'"
                            .to_owned(),
                    );
                }
            }
        }
    };
    let url_ttl_seconds = raw.pre_signed_url_timeout_seconds.unwrap_or(3600);
    crate::domain::model::check_url_ttl("preSignedUrlTimeoutSeconds", url_ttl_seconds)?;
    for rule in &storage {
        if let Some(a) = &rule.assume_role
            && a.duration_s < url_ttl_seconds.saturating_mul(2)
        {
            warnings.push(format!(
                "storage '{}': assumeRoleDurationSeconds {} is less than twice \
                 preSignedUrlTimeoutSeconds ({url_ttl_seconds}); URLs are cut short to the \
                 remaining life of the role's credentials",
                rule.prefix, a.duration_s
            ));
        }
    }
    if url_ttl_seconds < 900 {
        warnings.push(format!(
            "preSignedUrlTimeoutSeconds is {url_ttl_seconds}: the Spark connector keeps \
             refreshing URLs that expire within 15 minutes; use 900 or more"
        ));
    }
    if raw.evaluate_predicate_hints == Some(false) {
        warnings.retain(|w| !w.contains("'evaluatePredicateHints'"));
    }
    if raw.staleness_acceptable != Some(true) {
        warnings.retain(|w| !w.contains("'stalenessAcceptable'"));
    }
    let endpoint = raw.endpoint.unwrap_or_else(|| "/delta-sharing".to_owned());
    let endpoint = format!("/{}", endpoint.trim_matches('/'));
    let endpoint = if endpoint == "/" {
        String::new()
    } else {
        endpoint
    };
    let temp_credential_validity_s = positive(
        "temporaryCredentialValiditySeconds",
        raw.temporary_credential_validity_seconds,
        3600,
    )?;
    if temp_credential_validity_s < STS_MIN_SECONDS
        && storage
            .iter()
            .any(|r| r.kind == crate::storage::location::StoreKind::S3 && r.directory.is_some())
    {
        warnings.push(format!(
            "temporaryCredentialValiditySeconds is {temp_credential_validity_s} but AWS STS \
             issues credentials for at least {STS_MIN_SECONDS} seconds: directory-access \
             credentials for S3 tables will be valid for {STS_MIN_SECONDS} seconds"
        ));
    }
    let bearer_token = raw
        .authorization
        .and_then(|a| a.bearer_token)
        .filter(|t| !t.trim().is_empty());
    Ok(Config {
        base_dir: base_dir.to_path_buf(),
        host: raw.host.unwrap_or_else(|| "localhost".to_owned()),
        port: raw.port.unwrap_or(80),
        endpoint,
        url_ttl_seconds,
        evaluate_json_hints: raw.evaluate_json_predicate_hints.unwrap_or(true),
        evaluate_json_hints_v2: raw.evaluate_json_predicate_hints_v2.unwrap_or(true),
        cache_size: raw
            .delta_table_cache_size
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(64)
            .max(16),
        bearer_token,
        ssl,
        url_signing_key_file: raw.url_signing_key_file.map(|f| base_dir.join(f)),
        trusted_proxies: raw
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("trustedProxies: '{p}' is not an IP address or CIDR"))
            })
            .collect::<Result<_, _>>()?,
        page_size_limit: positive(
            "queryTablePageSizeLimit",
            raw.query_table_page_size_limit,
            10_000,
        )? as usize,
        page_token_ttl_ms: positive(
            "queryTablePageTokenTtlMs",
            raw.query_table_page_token_ttl_ms,
            259_200_000,
        )?,
        refresh_token_ttl_ms: positive("refreshTokenTtlMs", raw.refresh_token_ttl_ms, 3_600_000)?,
        async_max_concurrent_per_recipient: positive(
            "asyncQueryMaxConcurrentPerRecipient",
            raw.async_query_max_concurrent_per_recipient,
            4,
        )? as usize,
        async_result_ttl_ms: positive(
            "asyncQueryResultTtlSeconds",
            raw.async_query_result_ttl_seconds,
            3600,
        )?
        .saturating_mul(1000),
        shares,
        declared,
        storage,
        storage_self_test: raw.storage_self_test.unwrap_or(true),
        audit_signing_key_file: raw.audit_signing_key_file.map(|f| base_dir.join(f)),
        audit_fail_closed: raw.audit_fail_closed.unwrap_or(true),
        audit_jsonl: match raw.audit_jsonl_file {
            None => None,
            Some(f) => Some((
                base_dir.join(f),
                positive("auditJsonlMaxBytes", raw.audit_jsonl_max_bytes, 100 << 20)? as u64,
            )),
        },
        anomalies: raw
            .anomalies
            .map(|a| {
                let d = crate::audit::anomaly::AnomalyRules::default();
                Ok::<_, String>((
                    crate::audit::anomaly::AnomalyRules {
                        volume_factor: a
                            .volume_factor
                            .filter(|f| *f > 1.0)
                            .unwrap_or(d.volume_factor),
                        volume_min_requests: a.volume_min_requests.unwrap_or(d.volume_min_requests),
                        baseline_minutes: a.baseline_minutes.unwrap_or(d.baseline_minutes),
                        window: a
                            .allowed_window
                            .as_deref()
                            .map(crate::audit::anomaly::parse_window)
                            .transpose()
                            .map_err(|e| format!("anomalies.allowedWindow: {e}"))?,
                        probe_threshold: a
                            .probe_threshold
                            .filter(|n| *n > 0)
                            .unwrap_or(d.probe_threshold),
                    },
                    a.webhook_url,
                ))
            })
            .transpose()?,
        limits: raw
            .limits
            .map(|l| crate::domain::limits::Limits {
                requests_per_minute: l.requests_per_minute.filter(|n| *n > 0),
                files_per_day: l.files_per_day.filter(|n| *n > 0),
                bytes_per_day: l.bytes_per_day.filter(|n| *n > 0),
                concurrent_queries: l.concurrent_queries.filter(|n| *n > 0),
            })
            .unwrap_or_default(),
        audit_checkpoint_every: positive("auditCheckpointEvery", raw.audit_checkpoint_every, 1000)?,
        temp_credential_validity_s,
        connections: connection_limits(raw.connections)?,
        public_url: raw.public_url.map(|u| check_public_url(&u)).transpose()?,
        metrics_listener: raw
            .metrics_listener
            .map(|m| {
                let token = super::storage::value(
                    "metricsListener",
                    "bearerToken",
                    &m.bearer_token,
                    true,
                    base_dir,
                )?;
                if token.trim().len() < 16 {
                    return Err(
                        "metricsListener.bearerToken must be at least 16 characters".to_owned()
                    );
                }
                Ok::<_, String>(MetricsListener {
                    host: m.host,
                    port: m.port,
                    token_hash: crate::domain::token::hash(token.trim()),
                })
            })
            .transpose()?,
        warnings,
    })
}

fn grant_decl(recipient: &str, g: RawGrant) -> Result<GrantDecl, String> {
    let (share, expires) = match g {
        RawGrant::Name(n) => (n, None),
        RawGrant::Detailed { name, expires_at } => (name, expires_at),
    };
    let expires_at_ms = expires
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(&e)
                .map(|d| d.timestamp_millis())
                .map_err(|err| {
                    format!(
                        "recipient '{recipient}': expiresAt '{e}' of share '{share}' is not an RFC 3339 time such as 2027-01-31T00:00:00Z ({err})"
                    )
                })
        })
        .transpose()?;
    Ok(GrantDecl {
        share,
        expires_at_ms,
    })
}

/// Validates the `recipients` section; grants must name declared shares when the file has a
/// `shares` section (otherwise they are checked against the catalog at plan time).
fn recipients(
    list: Vec<RawRecipient>,
    shares: Option<&Vec<ShareDecl>>,
) -> Result<Vec<RecipientDecl>, String> {
    let mut out: Vec<RecipientDecl> = Vec::new();
    for r in list {
        check_name("recipient", &r.name, true)?;
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&r.name)) {
            return Err(format!("recipient '{}' is declared twice", r.name));
        }
        for ip in &r.ip_access_list {
            if ip.parse::<ipnet::IpNet>().is_err() && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!(
                    "recipient '{}': ipAccessList entry '{ip}' is not an IP address or CIDR (e.g. 10.0.0.0/8)",
                    r.name
                ));
            }
        }
        let mut grants: Vec<GrantDecl> = Vec::new();
        for g in r.shares {
            let g = grant_decl(&r.name, g)?;
            if let Some(shares) = shares
                && !shares.iter().any(|s| s.name.eq_ignore_ascii_case(&g.share))
            {
                return Err(format!(
                    "recipient '{}' is granted share '{}', which the file does not declare",
                    r.name, g.share
                ));
            }
            if grants
                .iter()
                .any(|o| o.share.eq_ignore_ascii_case(&g.share))
            {
                return Err(format!(
                    "recipient '{}' is granted share '{}' twice",
                    r.name, g.share
                ));
            }
            grants.push(g);
        }
        out.push(RecipientDecl {
            name: r.name,
            comment: r.comment,
            properties: r.properties,
            ip_access_list: r.ip_access_list,
            grants,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = r#"
version: 1
shares:
- name: "share1"
  schemas:
  - name: "default"
    tables:
    - name: "table1"
      location: "s1/t1"
      id: "00000000-0000-0000-0000-000000000000"
    - name: "table2"
      location: "file:///data/t2"
      historyShared: true
      startVersion: 1
authorization:
  bearerToken: "dapi5e3574ec767ca1548ae5bbed1a2dc04d"
host: "localhost"
port: 8080
endpoint: "/delta-sharing"
preSignedUrlTimeoutSeconds: 3600
deltaTableCacheSize: 10
stalenessAcceptable: false
evaluatePredicateHints: false
evaluateJsonPredicateHints: true
evaluateJsonPredicateHintsV2: true
queryTablePageSizeLimit: 10000
somethingElse: 3
"#;

    #[test]
    fn reference_config_is_accepted_with_warnings() {
        let c = parse(REFERENCE, Path::new("/cfg")).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.endpoint, "/delta-sharing");
        assert_eq!(c.port, 8080);
        assert_eq!(
            c.bearer_token.as_deref(),
            Some("dapi5e3574ec767ca1548ae5bbed1a2dc04d")
        );
        let t = &c.shares[0].schemas[0].tables;
        assert_eq!(t[0].location, "file:///cfg/s1/t1/");
        assert!(t[1].history_shared);
        assert_eq!(t[1].start_version, 1);
        assert!(
            c.warnings.iter().any(|w| w.contains("'somethingElse'")),
            "{:?}",
            c.warnings
        );
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.contains("'queryTablePageSizeLimit'")),
            "pagination is supported: {:?}",
            c.warnings
        );
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.contains("'stalenessAcceptable'"))
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let e = parse("version: 2", Path::new("/"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("version"), "{e}");
        let e = parse(
            "version: 1\nshares:\n- name: s\n  schemas:\n  - name: a.b\n    tables: []\n",
            Path::new("/"),
        )
        .err()
        .unwrap_or_default();
        assert!(e.contains("invalid schema name 'a.b'"), "{e}");
        let e = parse(
            "version: 1\nshares:\n- name: s\n  schemas:\n  - name: a\n    tables:\n    - name: t\n      location: s3:///t\n",
            Path::new("/"),
        )
        .err()
        .unwrap_or_default();
        assert!(e.contains("table 's.a.t'") && e.contains("bucket"), "{e}");
    }
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn deep_yaml_is_refused_before_it_is_parsed() {
        let flow = format!(
            "version: 1\nshares: {}{}\n",
            "[".repeat(65_536),
            "]".repeat(65_536)
        );
        let started = std::time::Instant::now();
        let err = parse_policy(&flow).err().unwrap_or_default();
        assert!(err.contains("nested too deeply"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let block: String = (0..5_000)
            .map(|i| format!("{}- a\n", " ".repeat(i)))
            .collect();
        assert!(yaml_nesting_bound(&block) > MAX_YAML_NESTING_BOUND);
        let compact = format!("version: 1\nshares:\n{}x\n", "- ".repeat(200));
        assert!(yaml_nesting_bound(&compact) >= 200);
        let normal = "version: 1\nshares:\n- name: s\n  schemas:\n  - name: d\n    tables:\n    \
                      - {name: t, location: 's3://b/t', partitions: [{name: x}]}\n";
        assert!(yaml_nesting_bound(normal) < 20);
        let small = "version: 1\nshares:\n- name: s\n  schemas:\n  - name: d\n    tables: []\n";
        assert!(
            parse_policy(small).is_ok(),
            "{:?}",
            parse_policy(small).err()
        );
        let quoted = "version: 1\n# [[[[ in a comment\nshares: []\nx: '[[[['\n";
        assert!(yaml_nesting_bound(quoted) < 5);
    }
}
