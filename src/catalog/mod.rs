//! The state store: shares, schemas and tables (declared in the config, a policy file or
//! through the admin API), registered tables, recipients, hashed tokens, grants and signing
//! keys, behind one [`CatalogStore`] trait.
//!
//! SQLite (one local file) is the embedded default.

pub mod plan;
pub mod sql;
mod sql_apply;
mod sql_async;
mod sql_audit;
pub mod state;

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::async_query::AsyncQueryStore;
use crate::domain::model::{AdminChange, RecipientInfo, Schema, Share, SharedTable};
use crate::domain::token::NewToken;
use crate::storage::keyring::SigningKey;

pub use plan::Change;
pub use state::{
    CatalogState, DeclaredState, GrantDecl, Origin, RecipientDecl, SchemaDecl, ShareDecl, TableDecl,
};

/// Catalog errors, mapped from the database at this edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The object exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// Input rejected by the store.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database is unavailable or failed.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, CatalogError>;

/// A table registered by location (Unity's `POST /tables`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredTable {
    /// `catalog.schema.table`.
    pub full_name: String,
    /// Normalized location URL.
    pub location: String,
    /// Comment.
    pub comment: Option<String>,
    /// Registration time (ms).
    pub created_at_ms: i64,
    /// Who registered it.
    pub created_by: String,
}

/// What a token hash resolves to.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Stored hash (compared again in constant time by the caller).
    pub hash: Vec<u8>,
    /// Owner.
    pub recipient_id: String,
    /// Owner's name.
    pub recipient_name: String,
    /// Display prefix.
    pub prefix: String,
    /// Expiry (ms).
    pub expires_at_ms: Option<i64>,
    /// Token revocation time.
    pub token_revoked_at_ms: Option<i64>,
    /// Recipient revocation time.
    pub recipient_revoked_at_ms: Option<i64>,
    /// Recipient properties.
    pub properties: BTreeMap<String, String>,
    /// Recipient IP allow list (CIDRs; empty = any).
    pub ip_access_list: Vec<String>,
}

/// A recipient to create.
#[derive(Debug, Clone, Default)]
pub struct NewRecipient {
    /// Unique name.
    pub name: String,
    /// Shares to grant.
    pub shares: Vec<String>,
    /// Token expiry (ms).
    pub token_expires_at_ms: Option<i64>,
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// IP allow list (CIDRs).
    pub ip_access_list: Vec<String>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// An activation link to store with the recipient, in the same transaction.
    pub activation: Option<NewActivation>,
}

/// A one-time activation code to store (hashed).
#[derive(Debug, Clone)]
pub struct NewActivation {
    /// SHA-256 of the code.
    pub code_hash: [u8; 32],
    /// When the link stops working (ms).
    pub expires_at_ms: i64,
    /// Expiry of the token it will issue (ms), if any.
    pub token_expires_at_ms: Option<i64>,
}

/// An admin token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenInfo {
    /// The administrator's name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// Expiry (ms), if any.
    pub expires_at_ms: Option<i64>,
    /// Revocation time (ms), if revoked.
    pub revoked_at_ms: Option<i64>,
}

/// A redeemed (or redeemable) activation code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// Recipient name.
    pub recipient_name: String,
    /// Expiry of the code (ms).
    pub expires_at_ms: i64,
    /// Expiry of the token it issues (ms).
    pub token_expires_at_ms: Option<i64>,
}

/// Changes to a recipient.
#[derive(Debug, Clone, Default)]
pub struct RecipientUpdate {
    /// Properties to set.
    pub set_properties: BTreeMap<String, String>,
    /// Properties to remove.
    pub remove_properties: Vec<String>,
    /// New IP allow list (`Some(vec![])` clears it).
    pub ip_access_list: Option<Vec<String>>,
    /// New comment.
    pub comment: Option<String>,
}

/// The state store. Implementations must be safe to call from many tasks at once. Every store
/// also keeps async query state, so that replicas sharing a store share it too.
#[async_trait]
pub trait CatalogStore:
    AsyncQueryStore + crate::audit::AuditStore + Send + Sync + std::fmt::Debug
{
    /// The same store, recording the changes made through the returned handle as `actor`.
    fn as_actor(&self, actor: &str) -> DynCatalog;
    /// Everything that policy files, the config and the admin API declare, as it is now.
    async fn catalog_state(&self) -> Result<CatalogState>;
    /// Applies `changes` in order, in one transaction (all or nothing), recording each as an
    /// admin change. Shares created or updated become owned by `origin`.
    async fn apply_changes(&self, changes: &[Change], origin: Origin, now_ms: i64) -> Result<()>;
    /// Registers a table by location (`Conflict` if the name is taken).
    async fn register_table(&self, table: &RegisteredTable) -> Result<()>;
    /// A registered table by `catalog.schema.table` (case-insensitive).
    async fn registered_table(&self, full_name: &str) -> Result<Option<RegisteredTable>>;
    /// Registered tables whose name starts with `prefix` (case-insensitive), by name.
    async fn list_registered_tables(&self, prefix: &str) -> Result<Vec<RegisteredTable>>;
    /// Unregisters a table (shares keep their aliases). `false` if there was none.
    async fn delete_registered_table(&self, full_name: &str) -> Result<bool>;
    /// All shares, in declaration order.
    async fn list_shares(&self) -> Result<Vec<Share>>;
    /// A share by name (case-insensitive).
    async fn get_share(&self, share: &str) -> Result<Option<Share>>;
    /// Schemas of a share in order (`None` if the share does not exist).
    async fn list_schemas(&self, share: &str) -> Result<Option<Vec<Schema>>>;
    /// Tables of a share, optionally of one schema (`None` if share or schema do not exist).
    async fn list_tables(
        &self,
        share: &str,
        schema: Option<&str>,
    ) -> Result<Option<Vec<SharedTable>>>;
    /// One table by share/schema/name.
    async fn get_table(
        &self,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SharedTable>>;
    /// One table by its key (id).
    async fn get_table_by_id(&self, id: &str) -> Result<Option<SharedTable>>;
    /// Resolves a token hash.
    async fn lookup_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>>;
    /// Shares granted to a recipient at `now_ms` (expired grants excluded; names as stored).
    async fn granted_shares(&self, recipient_id: &str, now_ms: i64) -> Result<Vec<String>>;
    /// The name of a recipient that exists and is not revoked.
    async fn active_recipient_name(&self, recipient_id: &str) -> Result<Option<String>>;
    /// Number of active recipients.
    async fn active_recipient_count(&self) -> Result<i64>;
    /// Creates a recipient with its grants and, unless `token` is `None` (the token is then
    /// issued through an activation link), one token; returns its id.
    async fn create_recipient(
        &self,
        recipient: &NewRecipient,
        token: Option<&NewToken>,
        now_ms: i64,
    ) -> Result<String>;
    /// Stores a one-time activation code (hashed) for an active recipient.
    async fn create_activation(
        &self,
        recipient: &str,
        activation: &NewActivation,
        now_ms: i64,
    ) -> Result<()>;
    /// Redeems an activation code: stores `token` for its recipient and marks the code used,
    /// atomically. `None` if the code is unknown, used, expired, or its recipient revoked.
    async fn activate(
        &self,
        code_hash: &[u8; 32],
        token: &NewToken,
        now_ms: i64,
    ) -> Result<Option<Activation>>;
    /// What an unused, unexpired activation code is for, without redeeming it.
    async fn activation_info(
        &self,
        code_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<Activation>>;
    /// Updates properties / IP list. `false` if no such active recipient.
    async fn update_recipient(&self, name: &str, update: &RecipientUpdate) -> Result<bool>;
    /// The recipient's live tokens expire after `grace_ms` (0 = now), its unredeemed
    /// activation links stop working now, and `token` or `activation`, if given, is added
    /// (all in one transaction). `false` if no such active recipient.
    async fn rotate_token(
        &self,
        name: &str,
        token: Option<&NewToken>,
        activation: Option<&NewActivation>,
        expires_at_ms: Option<i64>,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<bool>;
    /// Grants a share (replacing an existing grant's expiry).
    async fn add_grant(
        &self,
        recipient: &str,
        share: &str,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<()>;
    /// Removes a grant. `false` if there was none.
    async fn remove_grant(&self, recipient: &str, share: &str) -> Result<bool>;
    /// One recipient by name.
    async fn get_recipient(&self, name: &str) -> Result<Option<RecipientInfo>>;
    /// Revokes a recipient and all its tokens. `false` if no such active recipient.
    async fn revoke_recipient(&self, name: &str, now_ms: i64) -> Result<bool>;
    /// All recipients.
    async fn list_recipients(&self) -> Result<Vec<RecipientInfo>>;
    /// Stores an administrator token (hashed).
    async fn create_admin_token(
        &self,
        name: &str,
        token: &NewToken,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<()>;
    /// Every admin token (never the secret), newest first.
    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>>;
    /// Revokes the live admin tokens whose display prefix is `prefix`, or, without one, every
    /// live token of administrator `name`. Returns how many were revoked.
    async fn revoke_admin_tokens(
        &self,
        name: Option<&str>,
        prefix: Option<&str>,
        now_ms: i64,
    ) -> Result<usize>;
    /// The administrator a token belongs to, if it is known and not revoked.
    async fn lookup_admin_token(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<String>>;
    /// The most recent `limit` administrative changes, newest first.
    async fn admin_changes(&self, limit: usize) -> Result<Vec<AdminChange>>;
    /// All signing keys.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Adds `key` as the first current key; fails if a current key exists already (so replicas
    /// starting together agree on one key).
    async fn add_first_signing_key(&self, key: &SigningKey) -> Result<()>;
    /// Adds `key` as the current key, retiring the previous current key at `now_ms`.
    async fn rotate_signing_key(&self, key: &SigningKey, now_ms: i64) -> Result<()>;
}

/// Shared catalog handle.
pub type DynCatalog = std::sync::Arc<dyn CatalogStore>;
