//! Shared objects and recipients as the catalog stores them.

use std::collections::BTreeMap;

use crate::domain::partition_filter::PartitionSpec;
use crate::storage::location::TableLocation;

/// A share: a named collection of schemas granted to recipients as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Name as declared (matched case-insensitively).
    pub name: String,
    /// Stable id.
    pub id: String,
}

/// A schema inside a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Share name.
    pub share: String,
    /// Schema name.
    pub name: String,
}

/// The longest lifetime of a pre-signed URL: 7 days, the most S3 (SigV4) and GCS (V4)
/// honour; Azure SAS would allow more, but one limit keeps every store's URLs alike.
pub const MAX_URL_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// Checks a URL lifetime in seconds (`what` names the setting in the message).
pub fn check_url_ttl(what: &str, seconds: i64) -> Result<(), String> {
    if seconds <= 0 || seconds > MAX_URL_TTL_SECONDS {
        return Err(format!(
            "{what} must be between 1 and {MAX_URL_TTL_SECONDS} seconds (7 days, the longest \
             pre-signed URL S3 and GCS accept); got {seconds}"
        ));
    }
    Ok(())
}

/// A shared table: an alias inside share/schema pointing at a Delta table location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedTable {
    /// Share name.
    pub share: String,
    /// Share id.
    pub share_id: String,
    /// Schema name.
    pub schema: String,
    /// Table alias.
    pub name: String,
    /// Stable table id (configured or derived).
    pub id: String,
    /// Where the Delta table lives.
    pub location: TableLocation,
    /// Whether history (time travel, CDF, startingTimestamp) is shared.
    pub history_shared: bool,
    /// Earliest version recipients may query.
    pub start_version: i64,
    /// Partition filter applied to every recipient (Unity-style), if any.
    pub partition_spec: Option<PartitionSpec>,
    /// Lifetime of this share's pre-signed URLs (ms), if the share sets one.
    pub url_ttl_ms: Option<i64>,
}

impl SharedTable {
    /// `share.schema.table`, as used in protocol error messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}.{}", self.share, self.schema, self.name)
    }

    /// Why recipients may only read this table through per-file URLs, if they must: any
    /// restriction enforced file by file (a history floor, a partition filter) would be
    /// bypassed by credentials for the whole directory.
    pub fn url_only_reason(&self) -> Option<String> {
        if !self.history_shared {
            return Some("its history is not shared".to_owned());
        }
        if self.start_version > 0 {
            return Some(format!(
                "it is shared from version {} on (files of earlier versions stay in its \
                 directory)",
                self.start_version
            ));
        }
        if self.partition_spec.is_some() {
            return Some("it is shared with a partition filter".to_owned());
        }
        None
    }
}

/// How a principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A recipient authenticated by a bearer token from the state store.
    Recipient,
    /// The reference-style `authorization.bearerToken` of the config; granted every share.
    ConfigToken,
    /// Anonymous access (loopback development only); granted every share.
    Anonymous,
}

/// Shares a principal may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grants {
    /// Every share (config token, anonymous).
    All,
    /// These shares (names as stored; compared case-insensitively).
    Shares(Vec<String>),
}

impl Grants {
    /// Whether `share` is granted.
    pub fn covers(&self, share: &str) -> bool {
        match self {
            Self::All => true,
            Self::Shares(list) => list.iter().any(|s| s.eq_ignore_ascii_case(share)),
        }
    }
}

/// The authenticated caller of a recipient request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recipient id (`anonymous` for anonymous access).
    pub recipient_id: String,
    /// Recipient name.
    pub recipient_name: String,
    /// Display prefix of the token used (never the token).
    pub token_prefix: String,
    /// Kind of caller.
    pub kind: PrincipalKind,
    /// What it may read.
    pub grants: Grants,
    /// Recipient properties (values for templated partition filters).
    pub properties: BTreeMap<String, String>,
}

/// Recipient id used in file URLs issued to the config token.
pub const CONFIG_TOKEN_RECIPIENT_ID: &str = "config-bearer-token";

impl Principal {
    /// The principal of the reference-style configured bearer token.
    pub fn config_token(prefix: String) -> Self {
        Self {
            recipient_id: CONFIG_TOKEN_RECIPIENT_ID.to_owned(),
            recipient_name: CONFIG_TOKEN_RECIPIENT_ID.to_owned(),
            token_prefix: prefix,
            kind: PrincipalKind::ConfigToken,
            grants: Grants::All,
            properties: BTreeMap::new(),
        }
    }

    /// The principal used when the server allows anonymous access.
    pub fn anonymous() -> Self {
        Self {
            recipient_id: "anonymous".to_owned(),
            recipient_name: "anonymous".to_owned(),
            token_prefix: String::new(),
            kind: PrincipalKind::Anonymous,
            grants: Grants::All,
            properties: BTreeMap::new(),
        }
    }
}

/// A recipient as listed by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Revocation time (ms), if revoked.
    pub revoked_at_ms: Option<i64>,
    /// Granted shares.
    pub shares: Vec<String>,
    /// Tokens (display prefix, never the secret).
    pub tokens: Vec<TokenInfo>,
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// IP allow list (CIDRs; empty = any).
    pub ip_access_list: Vec<String>,
    /// Grant expiries (ms), by share.
    pub grant_expiries: BTreeMap<String, Option<i64>>,
    /// Activation links not yet redeemed (including expired ones; callers compare with now).
    pub pending_links: Vec<PendingLink>,
    /// Free-text comment.
    pub comment: Option<String>,
}

/// An activation link not yet redeemed (never its code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// When the link stops working (ms).
    pub expires_at_ms: i64,
    /// Expiry of the token it would issue (ms).
    pub token_expires_at_ms: Option<i64>,
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Display prefix.
    pub prefix: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Expiry (ms).
    pub expires_at_ms: Option<i64>,
    /// Revocation time (ms).
    pub revoked_at_ms: Option<i64>,
}

/// One recorded administrative change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    /// Sequence number (order of recording).
    pub seq: i64,
    /// When (ms).
    pub at_ms: i64,
    /// Who (`cli:<user>`, `server`, ...).
    pub actor: String,
    /// What (`recipient.create`, `grant.remove`, ...).
    pub action: String,
    /// On what (a recipient name, a key id, ...).
    pub target: String,
    /// Parameters of the change as JSON (never a secret).
    pub details: String,
}
