//! [`SqlCatalog`]'s managed objects: reading the whole declared state, applying a plan's
//! changes in one transaction, and the registry of tables registered by location.

use crate::domain::names::{NameKind, check_name};
use std::collections::BTreeMap;

use sqlx::Row;
use uuid::Uuid;

use super::plan::Change;
use super::sql::{
    SqlCatalog, Tx, active_recipient_id, db_err, derived_share_id, derived_table_id, json_list,
    json_map, record, to_json,
};
use super::state::{
    CatalogState, GrantDecl, Origin, RecipientDecl, SchemaDecl, ShareDecl, TableDecl,
};
use super::{CatalogError, RegisteredTable, Result};

fn not_found(what: String) -> CatalogError {
    CatalogError::NotFound(what)
}

/// Fails with `NotFound(what)` unless exactly one row was touched.
fn one(done: sqlx::any::AnyQueryResult, what: impl FnOnce() -> String) -> Result<()> {
    if done.rows_affected() == 0 {
        return Err(not_found(what()));
    }
    Ok(())
}

/// Inserts a recipient (no token, no grants); `Conflict` if the name was ever used.
/// Every name that enters the catalog follows [`crate::domain::names::check_name`].
fn valid_name(kind: NameKind, name: &str) -> Result<()> {
    check_name(kind, name).map_err(CatalogError::Invalid)
}

pub(super) async fn insert_recipient(
    tx: &mut Tx<'_>,
    r: &RecipientDecl,
    now_ms: i64,
) -> Result<String> {
    valid_name(NameKind::Recipient, &r.name)?;
    let existing = sqlx::query("SELECT revoked_at FROM recipients WHERE lower(name) = lower($1)")
        .bind(&r.name)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    if let Some(row) = existing {
        let revoked: Option<i64> = row.try_get("revoked_at").map_err(db_err)?;
        return Err(CatalogError::Conflict(if revoked.is_some() {
            format!(
                "recipient '{}' (revoked; names of revoked recipients are not reused)",
                r.name
            )
        } else {
            format!("recipient '{}'", r.name)
        }));
    }
    let id = Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO recipients (id, name, created_at, properties, ip_access_list, comment) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&r.name)
    .bind(now_ms)
    .bind(to_json(&r.properties)?)
    .bind(to_json(&r.ip_access_list)?)
    .bind(&r.comment)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(id)
}

/// Grants `share` (its stored spelling is returned), replacing an existing grant's expiry.
pub(super) async fn grant(
    tx: &mut Tx<'_>,
    recipient: &str,
    share: &str,
    expires_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<String> {
    let id = active_recipient_id(tx, recipient)
        .await?
        .ok_or_else(|| not_found(format!("recipient '{recipient}'")))?;
    let found = sqlx::query("SELECT name FROM shares WHERE lower(name) = lower($1)")
        .bind(share)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("share '{share}'")))?;
    let share_name: String = found.try_get("name").map_err(db_err)?;
    sqlx::query(
        "INSERT INTO grants (recipient_id, share, created_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (recipient_id, lower(share)) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(&id)
    .bind(&share_name)
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(share_name)
}

/// Removes a grant; `false` if there was none.
pub(super) async fn remove_grant(tx: &mut Tx<'_>, recipient: &str, share: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM grants WHERE lower(share) = lower($1) AND recipient_id = \
         (SELECT id FROM recipients WHERE lower(name) = lower($2))",
    )
    .bind(share)
    .bind(recipient)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

/// Revokes a recipient and its tokens; `false` if no such active recipient.
pub(super) async fn revoke_recipient(tx: &mut Tx<'_>, name: &str, now_ms: i64) -> Result<bool> {
    let Some(id) = active_recipient_id(tx, name).await? else {
        return Ok(false);
    };
    sqlx::query("UPDATE recipients SET revoked_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(&id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE recipient_id = $2 AND revoked_at IS NULL")
        .bind(now_ms)
        .bind(&id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(true)
}

async fn next_position(tx: &mut Tx<'_>, sql: &str, share: Option<&str>) -> Result<i64> {
    let q = sqlx::query(sql);
    let q = match share {
        Some(s) => q.bind(s.to_owned()),
        None => q,
    };
    let row = q.fetch_one(&mut **tx).await.map_err(db_err)?;
    row.try_get::<i64, _>("p").map_err(db_err)
}

async fn schema_exists(tx: &mut Tx<'_>, share: &str, schema: &str) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT name FROM schemas WHERE lower(share) = lower($1) AND lower(name) = lower($2)",
    )
    .bind(share)
    .bind(schema)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?
    .is_some())
}

async fn share_exists(tx: &mut Tx<'_>, share: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT name FROM shares WHERE lower(name) = lower($1)")
            .bind(share)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?
            .is_some(),
    )
}

async fn apply_one(
    tx: &mut Tx<'_>,
    change: &Change,
    origin: Origin,
    actor: &str,
    now_ms: i64,
) -> Result<()> {
    match change {
        Change::CreateShare {
            name,
            comment,
            url_ttl_seconds,
        } => {
            valid_name(NameKind::Share, name)?;
            if share_exists(tx, name).await? {
                return Err(CatalogError::Conflict(format!("share '{name}'")));
            }
            let position = next_position(
                tx,
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM shares",
                None,
            )
            .await?;
            sqlx::query(
                "INSERT INTO shares (name, id, position, comment, origin, created_at, created_by, \
                 url_ttl_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(name)
            .bind(derived_share_id(name))
            .bind(position)
            .bind(comment)
            .bind(origin.as_str())
            .bind(now_ms)
            .bind(actor)
            .bind(url_ttl_seconds)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        }
        Change::UpdateShare {
            name,
            after,
            ttl_after,
            ..
        } => {
            let done = sqlx::query(
                "UPDATE shares SET comment = $1, origin = $2, url_ttl_seconds = $3 \
                 WHERE lower(name) = lower($4)",
            )
            .bind(after)
            .bind(origin.as_str())
            .bind(ttl_after)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            one(done, || format!("share '{name}'"))?;
        }
        Change::DeleteShare { name, .. } => {
            for sql in [
                "DELETE FROM grants WHERE lower(share) = lower($1)",
                "DELETE FROM shared_tables WHERE lower(share) = lower($1)",
                "DELETE FROM schemas WHERE lower(share) = lower($1)",
            ] {
                sqlx::query(sql)
                    .bind(name)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
            let done = sqlx::query("DELETE FROM shares WHERE lower(name) = lower($1)")
                .bind(name)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            one(done, || format!("share '{name}'"))?;
        }
        Change::CreateSchema { share, name } => {
            valid_name(NameKind::Schema, name)?;
            if !share_exists(tx, share).await? {
                return Err(not_found(format!("share '{share}'")));
            }
            if schema_exists(tx, share, name).await? {
                return Err(CatalogError::Conflict(format!("schema '{share}.{name}'")));
            }
            let position = next_position(
                tx,
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM schemas \
                 WHERE lower(share) = lower($1)",
                Some(share),
            )
            .await?;
            sqlx::query("INSERT INTO schemas (share, name, position) VALUES ($1, $2, $3)")
                .bind(canonical_share(tx, share).await?)
                .bind(name)
                .bind(position)
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
        }
        Change::DeleteSchema { share, name, .. } => {
            sqlx::query(
                "DELETE FROM shared_tables WHERE lower(share) = lower($1) \
                 AND lower(schema_name) = lower($2)",
            )
            .bind(share)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            let done = sqlx::query(
                "DELETE FROM schemas WHERE lower(share) = lower($1) AND lower(name) = lower($2)",
            )
            .bind(share)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            one(done, || format!("schema '{share}.{name}'"))?;
        }
        Change::AddTable {
            share,
            schema,
            table,
        } => {
            valid_name(NameKind::Table, &table.name)?;
            if !schema_exists(tx, share, schema).await? {
                return Err(not_found(format!("schema '{share}.{schema}'")));
            }
            let position = next_position(
                tx,
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM shared_tables",
                None,
            )
            .await?;
            let id = table
                .id
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| derived_table_id(share, schema, &table.name));
            let (share_name, schema_name) = canonical_schema(tx, share, schema).await?;
            sqlx::query(
                "INSERT INTO shared_tables (share, schema_name, name, id, location, \
                 history_shared, start_version, position, partition_filter, source_name, \
                 added_at, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(share_name)
            .bind(schema_name)
            .bind(&table.name)
            .bind(id)
            .bind(&table.location)
            .bind(i64::from(table.history_shared))
            .bind(table.start_version)
            .bind(position)
            .bind(&table.partition_filter)
            .bind(&table.source_name)
            .bind(now_ms)
            .bind(actor)
            .execute(&mut **tx)
            .await
            .map_err(|e| match db_err(e) {
                CatalogError::Conflict(_) => CatalogError::Conflict(format!(
                    "table '{share}.{schema}.{}' (or its id)",
                    table.name
                )),
                other => other,
            })?;
        }
        Change::UpdateTable {
            share,
            schema,
            before,
            after,
        } => {
            let id = after
                .id
                .clone()
                .or_else(|| before.id.clone())
                .unwrap_or_else(|| derived_table_id(share, schema, &before.name));
            let done = sqlx::query(
                "UPDATE shared_tables SET location = $1, history_shared = $2, start_version = $3, \
                 partition_filter = $4, source_name = $5, id = $6 WHERE lower(share) = lower($7) \
                 AND lower(schema_name) = lower($8) AND lower(name) = lower($9)",
            )
            .bind(&after.location)
            .bind(i64::from(after.history_shared))
            .bind(after.start_version)
            .bind(&after.partition_filter)
            .bind(&after.source_name)
            .bind(id)
            .bind(share)
            .bind(schema)
            .bind(&before.name)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            one(done, || format!("table '{share}.{schema}.{}'", before.name))?;
        }
        Change::RemoveTable {
            share,
            schema,
            name,
        } => {
            let done = sqlx::query(
                "DELETE FROM shared_tables WHERE lower(share) = lower($1) \
                 AND lower(schema_name) = lower($2) AND lower(name) = lower($3)",
            )
            .bind(share)
            .bind(schema)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
            one(done, || format!("table '{share}.{schema}.{name}'"))?;
        }
        Change::CreateRecipient(r) => {
            insert_recipient(tx, r, now_ms).await?;
        }
        Change::UpdateRecipient { before, after } => {
            let id = active_recipient_id(tx, &before.name)
                .await?
                .ok_or_else(|| not_found(format!("recipient '{}'", before.name)))?;
            sqlx::query(
                "UPDATE recipients SET comment = $1, properties = $2, ip_access_list = $3 \
                 WHERE id = $4",
            )
            .bind(&after.comment)
            .bind(to_json(&after.properties)?)
            .bind(to_json(&after.ip_access_list)?)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        }
        Change::RevokeRecipient { name } => {
            if !revoke_recipient(tx, name, now_ms).await? {
                return Err(not_found(format!("recipient '{name}'")));
            }
        }
        Change::Grant {
            recipient,
            grant: g,
        } => {
            grant(tx, recipient, &g.share, g.expires_at_ms, now_ms).await?;
        }
        Change::UpdateGrant {
            recipient,
            share,
            after,
            ..
        } => {
            grant(tx, recipient, share, *after, now_ms).await?;
        }
        Change::RemoveGrant { recipient, share } => {
            if !remove_grant(tx, recipient, share).await? {
                // Already gone with a share deleted earlier in the same plan.
                if share_exists(tx, share).await? {
                    return Err(not_found(format!("grant of '{share}' to '{recipient}'")));
                }
            }
        }
    }
    let action = format!("{}.{}", change.object_type(), change.kind());
    record(
        tx,
        actor,
        now_ms,
        &action,
        &change.object_name(),
        serde_json::json!({"origin": origin.as_str(), "details": change.details()}),
    )
    .await
}

async fn canonical_share(tx: &mut Tx<'_>, share: &str) -> Result<String> {
    let row = sqlx::query("SELECT name FROM shares WHERE lower(name) = lower($1)")
        .bind(share)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("share '{share}'")))?;
    row.try_get("name").map_err(db_err)
}

async fn canonical_schema(tx: &mut Tx<'_>, share: &str, schema: &str) -> Result<(String, String)> {
    let row = sqlx::query(
        "SELECT share, name FROM schemas WHERE lower(share) = lower($1) AND lower(name) = lower($2)",
    )
    .bind(share)
    .bind(schema)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("schema '{share}.{schema}'")))?;
    Ok((
        row.try_get("share").map_err(db_err)?,
        row.try_get("name").map_err(db_err)?,
    ))
}

fn registered_from_row(r: &sqlx::any::AnyRow) -> Result<RegisteredTable> {
    Ok(RegisteredTable {
        full_name: r.try_get("full_name").map_err(db_err)?,
        location: r.try_get("location").map_err(db_err)?,
        comment: r.try_get("comment").map_err(db_err)?,
        created_at_ms: r.try_get("created_at").map_err(db_err)?,
        created_by: r.try_get("created_by").map_err(db_err)?,
    })
}

impl SqlCatalog {
    pub(super) async fn read_state(&self) -> Result<CatalogState> {
        let mut state = CatalogState::default();
        let shares = sqlx::query(
            "SELECT name, comment, origin, url_ttl_seconds FROM shares ORDER BY position",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let schemas = sqlx::query("SELECT share, name FROM schemas ORDER BY position")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        let tables = sqlx::query(
            "SELECT share, schema_name, name, id, location, history_shared, start_version, \
             partition_filter, source_name FROM shared_tables ORDER BY position",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        for s in &shares {
            let name: String = s.try_get("name").map_err(db_err)?;
            let origin: String = s.try_get("origin").map_err(db_err)?;
            state
                .origins
                .insert(name.to_lowercase(), Origin::parse(&origin));
            let mut decl = ShareDecl {
                comment: s.try_get("comment").map_err(db_err)?,
                url_ttl_seconds: s.try_get("url_ttl_seconds").map_err(db_err)?,
                schemas: Vec::new(),
                name,
            };
            for c in &schemas {
                let share: String = c.try_get("share").map_err(db_err)?;
                if !share.eq_ignore_ascii_case(&decl.name) {
                    continue;
                }
                let schema_name: String = c.try_get("name").map_err(db_err)?;
                let mut schema = SchemaDecl {
                    name: schema_name,
                    tables: Vec::new(),
                };
                for t in &tables {
                    let ts: String = t.try_get("share").map_err(db_err)?;
                    let tc: String = t.try_get("schema_name").map_err(db_err)?;
                    if !ts.eq_ignore_ascii_case(&decl.name)
                        || !tc.eq_ignore_ascii_case(&schema.name)
                    {
                        continue;
                    }
                    schema.tables.push(TableDecl {
                        name: t.try_get("name").map_err(db_err)?,
                        id: Some(t.try_get("id").map_err(db_err)?),
                        location: t.try_get("location").map_err(db_err)?,
                        history_shared: t.try_get::<i64, _>("history_shared").map_err(db_err)? != 0,
                        start_version: t.try_get("start_version").map_err(db_err)?,
                        partition_filter: t.try_get("partition_filter").map_err(db_err)?,
                        source_name: t.try_get("source_name").map_err(db_err)?,
                    });
                }
                decl.schemas.push(schema);
            }
            state.shares.push(decl);
        }
        let recipients = sqlx::query(
            "SELECT id, name, revoked_at, properties, ip_access_list, comment FROM recipients \
             ORDER BY name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let grants =
            sqlx::query("SELECT recipient_id, share, expires_at FROM grants ORDER BY share")
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
        let mut by_recipient: BTreeMap<String, Vec<GrantDecl>> = BTreeMap::new();
        for g in &grants {
            by_recipient
                .entry(g.try_get("recipient_id").map_err(db_err)?)
                .or_default()
                .push(GrantDecl {
                    share: g.try_get("share").map_err(db_err)?,
                    expires_at_ms: g.try_get("expires_at").map_err(db_err)?,
                });
        }
        for r in &recipients {
            let name: String = r.try_get("name").map_err(db_err)?;
            if r.try_get::<Option<i64>, _>("revoked_at")
                .map_err(db_err)?
                .is_some()
            {
                state.revoked_recipients.push(name);
                continue;
            }
            let id: String = r.try_get("id").map_err(db_err)?;
            state.recipients.push(RecipientDecl {
                name,
                comment: r.try_get("comment").map_err(db_err)?,
                properties: json_map(&r.try_get::<String, _>("properties").map_err(db_err)?)?,
                ip_access_list: json_list(
                    &r.try_get::<String, _>("ip_access_list").map_err(db_err)?,
                )?,
                grants: by_recipient.remove(&id).unwrap_or_default(),
            });
        }
        Ok(state)
    }

    pub(super) async fn apply_all(
        &self,
        changes: &[Change],
        origin: Origin,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        for change in changes {
            apply_one(&mut tx, change, origin, self.actor(), now_ms)
                .await
                .map_err(|e| match e {
                    CatalogError::Unavailable(m) => CatalogError::Unavailable(m),
                    other => CatalogError::Invalid(format!(
                        "cannot apply '{change}': {other}; nothing was changed"
                    )),
                })?;
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn insert_registered(&self, t: &RegisteredTable) -> Result<()> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO registered_tables (full_name, location, comment, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.full_name)
        .bind(&t.location)
        .bind(&t.comment)
        .bind(t.created_at_ms)
        .bind(&t.created_by)
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            CatalogError::Conflict(_) => CatalogError::Conflict(format!("table '{}'", t.full_name)),
            other => other,
        })?;
        record(
            &mut tx,
            self.actor(),
            t.created_at_ms,
            "table.register",
            &t.full_name,
            serde_json::json!({ "location": t.location }),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn select_registered(
        &self,
        full_name: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<RegisteredTable>> {
        let rows = sqlx::query(
            "SELECT full_name, location, comment, created_at, created_by \
             FROM registered_tables ORDER BY full_name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let prefix = prefix.to_lowercase();
        let mut out = Vec::new();
        for row in &rows {
            let t = registered_from_row(row)?;
            let keep = match full_name {
                Some(n) => t.full_name.eq_ignore_ascii_case(n),
                None => t.full_name.to_lowercase().starts_with(&prefix),
            };
            if keep {
                out.push(t);
            }
        }
        Ok(out)
    }

    pub(super) async fn unregister(&self, full_name: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.write_tx().await.map_err(db_err)?;
        let done = sqlx::query("DELETE FROM registered_tables WHERE lower(full_name) = lower($1)")
            .bind(full_name)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        record(
            &mut tx,
            self.actor(),
            now_ms,
            "table.unregister",
            full_name,
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}
