//! The declared state of shared objects, recipients and grants: what the config file, a
//! `lakeshare apply` policy file and the admin API all describe. Never holds a secret.

use std::collections::BTreeMap;

/// A table of a share: an alias (`schema.name` inside the share) for a Delta table location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    /// Alias.
    pub name: String,
    /// Configured id, if any (otherwise derived from the alias and kept stable).
    pub id: Option<String>,
    /// Normalized location URL.
    pub location: String,
    /// History sharing.
    pub history_shared: bool,
    /// History floor.
    pub start_version: i64,
    /// Partition filter (JSON of a `PartitionSpec`), if any.
    pub partition_filter: Option<String>,
    /// The registered table (`catalog.schema.table`) it was added as, if any.
    pub source_name: Option<String>,
}

/// A schema of a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDecl {
    /// Name.
    pub name: String,
    /// Tables in order.
    pub tables: Vec<TableDecl>,
}

/// A share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareDecl {
    /// Name.
    pub name: String,
    /// Free-text comment.
    pub comment: Option<String>,
    /// Lifetime of the share's pre-signed URLs (seconds; `None` = the server default).
    pub url_ttl_seconds: Option<i64>,
    /// Schemas in order.
    pub schemas: Vec<SchemaDecl>,
}

/// A grant of a share to a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantDecl {
    /// Share name.
    pub share: String,
    /// Expiry (ms), if any.
    pub expires_at_ms: Option<i64>,
}

/// A recipient with its grants (its tokens are issued separately, never declared).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientDecl {
    /// Unique name.
    pub name: String,
    /// Free-text comment.
    pub comment: Option<String>,
    /// Properties (used by partition filters).
    pub properties: BTreeMap<String, String>,
    /// IP allow list (CIDRs; empty = any).
    pub ip_access_list: Vec<String>,
    /// Granted shares.
    pub grants: Vec<GrantDecl>,
}

/// Who owns a share: the config file (reconciled at every start), the admin API, or
/// `lakeshare apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the server's config file.
    Config,
    /// Created through the admin API.
    Api,
    /// Created by `lakeshare apply`.
    Apply,
}

impl Origin {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Api => "api",
            Self::Apply => "apply",
        }
    }

    /// Parses the stored spelling (unknown values are treated as API-owned, which is never
    /// reconciled away).
    pub fn parse(s: &str) -> Self {
        match s {
            "config" => Self::Config,
            "apply" => Self::Apply,
            _ => Self::Api,
        }
    }
}

/// What a policy file declares. A section that is absent (`None`) is not managed by the file
/// and is left untouched; a present section, even empty, is the whole truth for its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredState {
    /// Shares with their schemas and tables.
    pub shares: Option<Vec<ShareDecl>>,
    /// Recipients with their grants.
    pub recipients: Option<Vec<RecipientDecl>>,
}

/// What the catalog holds now, in the same shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogState {
    /// Shares in order.
    pub shares: Vec<ShareDecl>,
    /// Owner of each share, by lower-case name.
    pub origins: BTreeMap<String, Origin>,
    /// Active (not revoked) recipients with their grants.
    pub recipients: Vec<RecipientDecl>,
    /// Names of revoked recipients (names are never reused).
    pub revoked_recipients: Vec<String>,
}

impl CatalogState {
    /// A share by name (case-insensitive).
    pub fn share(&self, name: &str) -> Option<&ShareDecl> {
        self.shares
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The owner of a share.
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.origins.get(&name.to_lowercase()).copied()
    }
}
