//! [`CatalogStore`] on SQL through sqlx's `Any` driver: one implementation for SQLite (the
//! embedded default, one file) and PostgreSQL (a catalog shared by several replicas).
//!
//! The queries are written once, in the dialect both understand (`$n` parameters in order,
//! `lower()` for case-insensitive names, `ON CONFLICT`); each backend has its own migrations
//! (`migrations/sqlite`, `migrations/postgres`).

use async_trait::async_trait;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::sql_apply;
use super::{
    Activation, AdminTokenInfo, CatalogError, CatalogState, CatalogStore, Change, NewActivation,
    NewRecipient, Origin, RecipientDecl, RecipientUpdate, RegisteredTable, Result, TokenRecord,
};
use crate::domain::model::{
    AdminChange, PendingLink, RecipientInfo, Schema, Share, SharedTable, TokenInfo,
};
use crate::domain::partition_filter::PartitionSpec;
use crate::domain::token::NewToken;
use crate::storage::keyring::SigningKey;
use crate::storage::location::TableLocation;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Stable id for a share.
pub fn derived_share_id(share: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("lakeshare:share:{}", share.to_lowercase()).as_bytes(),
    )
    .to_string()
}

/// Stable id for a table alias.
pub fn derived_table_id(share: &str, schema: &str, table: &str) -> String {
    let key = format!("lakeshare:table:{share}/{schema}/{table}").to_lowercase();
    Uuid::new_v5(&Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// A transaction on either backend.
pub(super) type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// Which database a [`SqlCatalog`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One local SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The SQL catalog.
#[derive(Debug, Clone)]
pub struct SqlCatalog {
    pool: AnyPool,
    backend: Backend,
    /// Who the changes made through this handle are recorded as.
    actor: String,
}

/// Stores an activation code for recipient `id` and records it, inside `tx`.
async fn insert_activation(
    tx: &mut Tx<'_>,
    actor: &str,
    recipient: &str,
    id: &str,
    a: &NewActivation,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO activation_codes (code_hash, recipient_id, created_at, expires_at, \
         token_expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&a.code_hash[..])
    .bind(id)
    .bind(now_ms)
    .bind(a.expires_at_ms)
    .bind(a.token_expires_at_ms)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    record(
        tx,
        actor,
        now_ms,
        "recipient.activation_link",
        recipient,
        serde_json::json!({ "expiresAt": a.expires_at_ms }),
    )
    .await
}

pub(super) fn db_err(e: sqlx::Error) -> CatalogError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            CatalogError::Conflict(d.message().to_owned())
        }
        _ => CatalogError::Unavailable(e.to_string()),
    }
}

impl SqlCatalog {
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A write transaction. On SQLite it takes the write lock at `BEGIN IMMEDIATE`, so a
    /// writer waits its turn (`busy_timeout`) instead of failing at once with "database is
    /// locked" when its deferred read transaction cannot be upgraded. PostgreSQL locks rows as
    /// it writes.
    pub(crate) async fn write_tx(&self) -> std::result::Result<Tx<'static>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub(super) fn actor(&self) -> &str {
        &self.actor
    }

    async fn recipient_info(&self, r: &AnyRow) -> Result<RecipientInfo> {
        let id: String = r.try_get("id").map_err(db_err)?;
        let tokens = sqlx::query(
            "SELECT prefix, created_at, expires_at, revoked_at FROM tokens \
             WHERE recipient_id = $1 ORDER BY created_at",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|t| {
            Ok(TokenInfo {
                prefix: t.try_get("prefix").map_err(db_err)?,
                created_at_ms: t.try_get("created_at").map_err(db_err)?,
                expires_at_ms: t.try_get("expires_at").map_err(db_err)?,
                revoked_at_ms: t.try_get("revoked_at").map_err(db_err)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let grants = sqlx::query("SELECT share, expires_at FROM grants WHERE recipient_id = $1")
            .bind(&id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|g| {
                Ok((
                    g.try_get::<String, _>("share").map_err(db_err)?,
                    g.try_get::<Option<i64>, _>("expires_at").map_err(db_err)?,
                ))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let pending_links = sqlx::query(
            "SELECT created_at, expires_at, token_expires_at FROM activation_codes \
             WHERE recipient_id = $1 AND used_at IS NULL ORDER BY created_at",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|a| {
            Ok(PendingLink {
                created_at_ms: a.try_get("created_at").map_err(db_err)?,
                expires_at_ms: a.try_get("expires_at").map_err(db_err)?,
                token_expires_at_ms: a.try_get("token_expires_at").map_err(db_err)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(RecipientInfo {
            shares: grants.keys().cloned().collect(),
            grant_expiries: grants,
            pending_links,
            name: r.try_get("name").map_err(db_err)?,
            created_at_ms: r.try_get("created_at").map_err(db_err)?,
            revoked_at_ms: r.try_get("revoked_at").map_err(db_err)?,
            properties: json_map(&r.try_get::<String, _>("properties").map_err(db_err)?)?,
            ip_access_list: json_list(&r.try_get::<String, _>("ip_access_list").map_err(db_err)?)?,
            comment: r.try_get("comment").map_err(db_err)?,
            tokens,
            id,
        })
    }

    /// Opens a SQLite file (created if missing), or connects to a `postgres://` /
    /// `postgresql://` URL, and runs the backend's migrations.
    pub async fn open(location: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let postgres = location.starts_with("postgres://") || location.starts_with("postgresql://");
        if postgres {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(location)
                .await
                .map_err(db_err)?;
            POSTGRES_MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| CatalogError::Unavailable(format!("migration failed: {e}")))?;
            return Ok(Self {
                pool,
                backend: Backend::Postgres,
                actor: "system".to_owned(),
            });
        }
        let path = std::path::Path::new(location);
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| CatalogError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Executor as _;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .map_err(db_err)?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(db_err)?;
        SQLITE_MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| CatalogError::Unavailable(format!("migration failed: {e}")))?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            actor: "system".to_owned(),
        })
    }

    /// The same store, recording changes as made by `actor` (e.g. `cli:alice`).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest applied migration and how many the binary knows (they match after `open`).
    pub async fn schema_version(&self) -> Result<(i64, usize)> {
        let row = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let known = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.iter().count(),
            Backend::Postgres => POSTGRES_MIGRATOR.iter().count(),
        };
        Ok((
            row.try_get::<Option<i64>, _>("v")
                .map_err(db_err)?
                .unwrap_or(0),
            known,
        ))
    }

    fn table_from_row(row: &AnyRow) -> Result<SharedTable> {
        let share: String = row.try_get("share").map_err(db_err)?;
        let location: String = row.try_get("location").map_err(db_err)?;
        let url = url::Url::parse(&location)
            .map_err(|e| CatalogError::Invalid(format!("stored location '{location}': {e}")))?;
        Ok(SharedTable {
            share_id: derived_share_id(&share),
            share,
            schema: row.try_get("schema_name").map_err(db_err)?,
            name: row.try_get("name").map_err(db_err)?,
            id: row.try_get("id").map_err(db_err)?,
            location: TableLocation::from_url(url)
                .map_err(|e| CatalogError::Invalid(e.to_string()))?,
            history_shared: row.try_get::<i64, _>("history_shared").map_err(db_err)? != 0,
            start_version: row.try_get("start_version").map_err(db_err)?,
            url_ttl_ms: row
                .try_get::<Option<i64>, _>("url_ttl_seconds")
                .map_err(db_err)?
                .map(|s| s.saturating_mul(1000)),
            partition_spec: row
                .try_get::<Option<String>, _>("partition_filter")
                .map_err(db_err)?
                .map(|j| serde_json::from_str::<PartitionSpec>(&j))
                .transpose()
                .map_err(|e| CatalogError::Invalid(format!("stored partition filter: {e}")))?,
        })
    }
}

const TABLE_COLUMNS: &str = "share, schema_name, name, id, location, history_shared, \
     start_version, partition_filter, (SELECT s.url_ttl_seconds FROM shares s \
     WHERE lower(s.name) = lower(shared_tables.share)) AS url_ttl_seconds";

/// Wall-clock time for change records of operations that carry no time of their own.
fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Records an admin change in the transaction that makes it.
pub(super) async fn record(
    tx: &mut Tx<'_>,
    actor: &str,
    at_ms: i64,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_changes (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(at_ms)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(details.to_string())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// An unused, unexpired activation code of an active recipient: (recipient id, activation).
async fn redeemable(
    tx: &mut Tx<'_>,
    code_hash: &[u8; 32],
    now_ms: i64,
) -> Result<Option<(String, Activation)>> {
    let row = sqlx::query(
        "SELECT a.recipient_id, r.name, a.expires_at, a.token_expires_at \
         FROM activation_codes a JOIN recipients r ON r.id = a.recipient_id \
         WHERE a.code_hash = $1 AND a.used_at IS NULL AND a.expires_at > $2 \
         AND r.revoked_at IS NULL",
    )
    .bind(&code_hash[..])
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.map(|r| {
        Ok((
            r.try_get("recipient_id").map_err(db_err)?,
            Activation {
                recipient_name: r.try_get("name").map_err(db_err)?,
                expires_at_ms: r.try_get("expires_at").map_err(db_err)?,
                token_expires_at_ms: r.try_get("token_expires_at").map_err(db_err)?,
            },
        ))
    })
    .transpose()
}

/// Stores a recipient token (its hash and display prefix only).
async fn insert_token(
    tx: &mut Tx<'_>,
    token: &NewToken,
    recipient_id: &str,
    now_ms: i64,
    expires_at_ms: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (hash, recipient_id, prefix, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.hash[..])
    .bind(recipient_id)
    .bind(&token.display_prefix)
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The id of the active (not revoked) recipient named `name`, inside a transaction.
pub(super) async fn active_recipient_id(tx: &mut Tx<'_>, name: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM recipients WHERE lower(name) = lower($1) AND revoked_at IS NULL",
    )
    .bind(name)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.map(|r| r.try_get("id").map_err(db_err)).transpose()
}

pub(super) fn json_map(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| CatalogError::Invalid(format!("stored properties: {e}")))
}

pub(super) fn json_list(text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| CatalogError::Invalid(format!("stored IP list: {e}")))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CatalogError::Invalid(e.to_string()))
}

#[async_trait]
impl CatalogStore for SqlCatalog {
    fn as_actor(&self, actor: &str) -> super::DynCatalog {
        std::sync::Arc::new(self.clone().with_actor(actor))
    }

    async fn catalog_state(&self) -> Result<CatalogState> {
        self.read_state().await
    }

    async fn apply_changes(&self, changes: &[Change], origin: Origin, now_ms: i64) -> Result<()> {
        self.apply_all(changes, origin, now_ms).await
    }

    async fn register_table(&self, table: &RegisteredTable) -> Result<()> {
        self.insert_registered(table).await
    }

    async fn registered_table(&self, full_name: &str) -> Result<Option<RegisteredTable>> {
        Ok(self
            .select_registered(Some(full_name), "")
            .await?
            .into_iter()
            .next())
    }

    async fn list_registered_tables(&self, prefix: &str) -> Result<Vec<RegisteredTable>> {
        self.select_registered(None, prefix).await
    }

    async fn delete_registered_table(&self, full_name: &str) -> Result<bool> {
        self.unregister(full_name, wall_clock_ms()).await
    }

    async fn list_shares(&self) -> Result<Vec<Share>> {
        let rows = sqlx::query("SELECT name, id FROM shares ORDER BY position")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(Share {
                    name: r.try_get("name").map_err(db_err)?,
                    id: r.try_get("id").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn get_share(&self, share: &str) -> Result<Option<Share>> {
        let row = sqlx::query("SELECT name, id FROM shares WHERE lower(name) = lower($1)")
            .bind(share)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| {
            Ok(Share {
                name: r.try_get("name").map_err(db_err)?,
                id: r.try_get("id").map_err(db_err)?,
            })
        })
        .transpose()
    }

    async fn list_schemas(&self, share: &str) -> Result<Option<Vec<Schema>>> {
        let Some(found) = self.get_share(share).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT name FROM schemas WHERE lower(share) = lower($1) ORDER BY position",
        )
        .bind(&found.name)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(Schema {
                    share: found.name.clone(),
                    name: r.try_get("name").map_err(db_err)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    async fn list_tables(
        &self,
        share: &str,
        schema: Option<&str>,
    ) -> Result<Option<Vec<SharedTable>>> {
        let Some(found) = self.get_share(share).await? else {
            return Ok(None);
        };
        let rows = if let Some(schema) = schema {
            let exists = sqlx::query("SELECT 1 FROM schemas WHERE lower(share) = lower($1) AND lower(name) = lower($2)")
                .bind(&found.name)
                .bind(schema)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
            if exists.is_none() {
                return Ok(None);
            }
            sqlx::query(&format!(
                "SELECT {TABLE_COLUMNS} FROM shared_tables WHERE lower(share) = lower($1) AND lower(schema_name) = lower($2) \
                 ORDER BY position"
            ))
            .bind(&found.name)
            .bind(schema)
            .fetch_all(&self.pool)
            .await
        } else {
            sqlx::query(&format!(
                "SELECT {TABLE_COLUMNS} FROM shared_tables WHERE lower(share) = lower($1) ORDER BY position"
            ))
            .bind(&found.name)
            .fetch_all(&self.pool)
            .await
        }
        .map_err(db_err)?;
        rows.iter()
            .map(Self::table_from_row)
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    async fn get_table(
        &self,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SharedTable>> {
        let row = sqlx::query(&format!(
            "SELECT {TABLE_COLUMNS} FROM shared_tables WHERE lower(share) = lower($1) AND lower(schema_name) = lower($2) \
             AND lower(name) = lower($3)"
        ))
        .bind(share)
        .bind(schema)
        .bind(table)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(Self::table_from_row).transpose()
    }

    async fn get_table_by_id(&self, id: &str) -> Result<Option<SharedTable>> {
        let row = sqlx::query(&format!(
            "SELECT {TABLE_COLUMNS} FROM shared_tables WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(Self::table_from_row).transpose()
    }

    async fn lookup_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT t.hash, t.recipient_id, r.name, t.prefix, t.expires_at, t.revoked_at, \
             r.revoked_at AS recipient_revoked_at, r.properties, r.ip_access_list \
             FROM tokens t JOIN recipients r ON r.id = t.recipient_id WHERE t.hash = $1",
        )
        .bind(&hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(TokenRecord {
                hash: r.try_get("hash").map_err(db_err)?,
                recipient_id: r.try_get("recipient_id").map_err(db_err)?,
                recipient_name: r.try_get("name").map_err(db_err)?,
                prefix: r.try_get("prefix").map_err(db_err)?,
                expires_at_ms: r.try_get("expires_at").map_err(db_err)?,
                token_revoked_at_ms: r.try_get("revoked_at").map_err(db_err)?,
                recipient_revoked_at_ms: r.try_get("recipient_revoked_at").map_err(db_err)?,
                properties: json_map(&r.try_get::<String, _>("properties").map_err(db_err)?)?,
                ip_access_list: json_list(
                    &r.try_get::<String, _>("ip_access_list").map_err(db_err)?,
                )?,
            })
        })
        .transpose()
    }

    async fn granted_shares(&self, recipient_id: &str, now_ms: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT share FROM grants WHERE recipient_id = $1 \
             AND (expires_at IS NULL OR expires_at > $2) ORDER BY lower(share)",
        )
        .bind(recipient_id)
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get("share").map_err(db_err))
            .collect()
    }

    async fn active_recipient_name(&self, recipient_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT name FROM recipients WHERE id = $1 AND revoked_at IS NULL")
            .bind(recipient_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("name").map_err(db_err)).transpose()
    }

    async fn active_recipient_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM recipients WHERE revoked_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        row.try_get("n").map_err(db_err)
    }

    async fn create_recipient(
        &self,
        recipient: &NewRecipient,
        token: Option<&NewToken>,
        now_ms: i64,
    ) -> Result<String> {
        let name = &recipient.name;
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let id = sql_apply::insert_recipient(
            &mut tx,
            &RecipientDecl {
                name: name.clone(),
                comment: recipient.comment.clone(),
                properties: recipient.properties.clone(),
                ip_access_list: recipient.ip_access_list.clone(),
                grants: Vec::new(),
            },
            now_ms,
        )
        .await?;
        let mut canonical = Vec::with_capacity(recipient.shares.len());
        for share in &recipient.shares {
            canonical.push(sql_apply::grant(&mut tx, name, share, None, now_ms).await?);
        }
        if let Some(token) = token {
            insert_token(&mut tx, token, &id, now_ms, recipient.token_expires_at_ms).await?;
        }
        if let Some(activation) = &recipient.activation {
            insert_activation(&mut tx, &self.actor, name, &id, activation, now_ms).await?;
        }
        record(&mut tx, &self.actor, now_ms, "recipient.create", name, serde_json::json!({"shares": canonical, "tokenPrefix": token.map(|t| &t.display_prefix), "tokenExpiresAt": recipient.token_expires_at_ms, "properties": recipient.properties, "ipAccessList": recipient.ip_access_list})).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn create_activation(
        &self,
        recipient: &str,
        activation: &NewActivation,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let id = active_recipient_id(&mut tx, recipient)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("recipient '{recipient}'")))?;
        insert_activation(&mut tx, &self.actor, recipient, &id, activation, now_ms).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn activate(
        &self,
        code_hash: &[u8; 32],
        token: &NewToken,
        now_ms: i64,
    ) -> Result<Option<Activation>> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let Some((id, activation)) = redeemable(&mut tx, code_hash, now_ms).await? else {
            return Ok(None);
        };
        let claimed = sqlx::query(
            "UPDATE activation_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now_ms)
        .bind(&code_hash[..])
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if claimed.rows_affected() != 1 {
            return Ok(None); // redeemed concurrently
        }
        insert_token(&mut tx, token, &id, now_ms, activation.token_expires_at_ms).await?;
        record(
            &mut tx,
            "activation-link",
            now_ms,
            "recipient.activate",
            &activation.recipient_name,
            serde_json::json!({ "tokenPrefix": token.display_prefix }),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(activation))
    }

    async fn activation_info(
        &self,
        code_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<Option<Activation>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        Ok(redeemable(&mut tx, code_hash, now_ms)
            .await?
            .map(|(_, a)| a))
    }

    async fn update_recipient(&self, name: &str, update: &RecipientUpdate) -> Result<bool> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let row = sqlx::query(
            "SELECT id, properties FROM recipients WHERE lower(name) = lower($1) AND revoked_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(false) };
        let id: String = row.try_get("id").map_err(db_err)?;
        let mut props = json_map(&row.try_get::<String, _>("properties").map_err(db_err)?)?;
        for k in &update.remove_properties {
            props.remove(k);
        }
        props.extend(update.set_properties.clone());
        sqlx::query("UPDATE recipients SET properties = $1 WHERE id = $2")
            .bind(to_json(&props)?)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(comment) = &update.comment {
            sqlx::query("UPDATE recipients SET comment = $1 WHERE id = $2")
                .bind(comment)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        if let Some(ips) = &update.ip_access_list {
            sqlx::query("UPDATE recipients SET ip_access_list = $1 WHERE id = $2")
                .bind(to_json(ips)?)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        record(&mut tx, &self.actor, wall_clock_ms(), "recipient.update", name, serde_json::json!({"setProperties": update.set_properties, "removeProperties": update.remove_properties, "ipAccessList": update.ip_access_list})).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn rotate_token(
        &self,
        name: &str,
        token: Option<&NewToken>,
        activation: Option<&NewActivation>,
        expires_at_ms: Option<i64>,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let Some(id) = active_recipient_id(&mut tx, name).await? else {
            return Ok(false);
        };
        if grace_ms <= 0 {
            sqlx::query(
                "UPDATE tokens SET revoked_at = $1 WHERE recipient_id = $2 AND revoked_at IS NULL",
            )
            .bind(now_ms)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        } else {
            let until = now_ms.saturating_add(grace_ms);
            sqlx::query(
                "UPDATE tokens SET expires_at = $1 WHERE recipient_id = $2 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(until)
            .bind(&id)
            .bind(until)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        // Links issued before the rotation would mint tokens that outlive it.
        let killed = sqlx::query(
            "UPDATE activation_codes SET expires_at = $1 WHERE recipient_id = $2 \
             AND used_at IS NULL AND expires_at > $3",
        )
        .bind(now_ms)
        .bind(&id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if let Some(token) = token {
            insert_token(&mut tx, token, &id, now_ms, expires_at_ms).await?;
        }
        if let Some(activation) = activation {
            insert_activation(&mut tx, &self.actor, name, &id, activation, now_ms).await?;
        }
        record(&mut tx, &self.actor, now_ms, "recipient.rotate_token", name, serde_json::json!({"tokenPrefix": token.map(|t| &t.display_prefix), "graceMs": grace_ms, "tokenExpiresAt": expires_at_ms, "pendingLinksEnded": killed})).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn add_grant(
        &self,
        recipient: &str,
        share: &str,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let share_name = sql_apply::grant(&mut tx, recipient, share, expires_at_ms, now_ms).await?;
        record(
            &mut tx,
            &self.actor,
            now_ms,
            "grant.add",
            recipient,
            serde_json::json!({"share": share_name, "expiresAt": expires_at_ms}),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    async fn remove_grant(&self, recipient: &str, share: &str) -> Result<bool> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        if !sql_apply::remove_grant(&mut tx, recipient, share).await? {
            return Ok(false);
        }
        record(
            &mut tx,
            &self.actor,
            wall_clock_ms(),
            "grant.remove",
            recipient,
            serde_json::json!({ "share": share }),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn get_recipient(&self, name: &str) -> Result<Option<RecipientInfo>> {
        let row = sqlx::query(
            "SELECT id, name, created_at, revoked_at, properties, ip_access_list, comment \
             FROM recipients WHERE lower(name) = lower($1)",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => self.recipient_info(&r).await.map(Some),
        }
    }

    async fn revoke_recipient(&self, name: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        if !sql_apply::revoke_recipient(&mut tx, name, now_ms).await? {
            return Ok(false);
        }
        record(
            &mut tx,
            &self.actor,
            now_ms,
            "recipient.revoke",
            name,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn list_recipients(&self) -> Result<Vec<RecipientInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at, properties, ip_access_list, comment \
             FROM recipients ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.recipient_info(&r).await?);
        }
        Ok(out)
    }

    async fn create_admin_token(
        &self,
        name: &str,
        token: &NewToken,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<()> {
        crate::domain::names::check_name(crate::domain::names::NameKind::Recipient, name)
            .map_err(|e| CatalogError::Invalid(e.replace("recipient", "administrator")))?;
        let mut tx = self.write_tx().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO admin_tokens (hash, name, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.hash[..])
        .bind(name)
        .bind(&token.display_prefix)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        record(
            &mut tx,
            &self.actor,
            now_ms,
            "admin_token.create",
            name,
            serde_json::json!({ "tokenPrefix": token.display_prefix, "expiresAt": expires_at_ms }),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenInfo>> {
        let rows = sqlx::query(
            "SELECT name, prefix, created_at, expires_at, revoked_at FROM admin_tokens \
             ORDER BY created_at DESC, prefix",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AdminTokenInfo {
                    name: r.try_get("name").map_err(db_err)?,
                    prefix: r.try_get("prefix").map_err(db_err)?,
                    created_at_ms: r.try_get("created_at").map_err(db_err)?,
                    expires_at_ms: r.try_get("expires_at").map_err(db_err)?,
                    revoked_at_ms: r.try_get("revoked_at").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn revoke_admin_tokens(
        &self,
        name: Option<&str>,
        prefix: Option<&str>,
        now_ms: i64,
    ) -> Result<usize> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let done = match (prefix, name) {
            (Some(p), _) => sqlx::query(
                "UPDATE admin_tokens SET revoked_at = $1 WHERE prefix = $2 AND revoked_at IS NULL",
            )
            .bind(now_ms)
            .bind(p),
            (None, Some(n)) => sqlx::query(
                "UPDATE admin_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
            )
            .bind(now_ms)
            .bind(n),
            (None, None) => {
                return Err(CatalogError::Invalid(
                    "name an administrator or a token prefix".to_owned(),
                ));
            }
        }
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        record(
            &mut tx,
            &self.actor,
            now_ms,
            "admin_token.revoke",
            name.or(prefix).unwrap_or_default(),
            serde_json::json!({ "tokenPrefix": prefix, "revoked": done }),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(usize::try_from(done).unwrap_or(usize::MAX))
    }

    async fn lookup_admin_token(&self, hash: &[u8; 32], now_ms: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT hash, name, expires_at FROM admin_tokens WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let stored: Vec<u8> = row.try_get("hash").map_err(db_err)?;
        if !crate::domain::token::hashes_equal(&stored, hash) {
            return Ok(None);
        }
        let expires: Option<i64> = row.try_get("expires_at").map_err(db_err)?;
        if expires.is_some_and(|e| e <= now_ms) {
            return Ok(None);
        }
        Ok(Some(row.try_get("name").map_err(db_err)?))
    }

    async fn admin_changes(&self, limit: usize) -> Result<Vec<AdminChange>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, details FROM admin_changes \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AdminChange {
                    seq: r.try_get("seq").map_err(db_err)?,
                    at_ms: r.try_get("at").map_err(db_err)?,
                    actor: r.try_get("actor").map_err(db_err)?,
                    action: r.try_get("action").map_err(db_err)?,
                    target: r.try_get("target").map_err(db_err)?,
                    details: r.try_get("details").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let rows = sqlx::query("SELECT id, secret, created_at, retired_at FROM signing_keys")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(SigningKey {
                    id: r.try_get("id").map_err(db_err)?,
                    secret: r.try_get("secret").map_err(db_err)?,
                    created_at_ms: r.try_get("created_at").map_err(db_err)?,
                    retired_at_ms: r.try_get("retired_at").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn add_first_signing_key(&self, key: &SigningKey) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(&key.id)
            .bind(&key.secret)
            .bind(key.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        record(
            &mut tx,
            &self.actor,
            key.created_at_ms,
            "signing_key.create",
            &key.id,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    async fn rotate_signing_key(&self, key: &SigningKey, now_ms: i64) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(&key.id)
            .bind(&key.secret)
            .bind(key.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        record(
            &mut tx,
            &self.actor,
            now_ms,
            "signing_key.rotate",
            &key.id,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }
}
