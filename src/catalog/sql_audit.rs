//! [`AuditStore`] on the SQL catalog: append-only tables (triggers refuse UPDATE and DELETE).

use async_trait::async_trait;
use sqlx::Row;

use super::sql::{SqlCatalog, db_err};
use crate::audit::{AuditError, AuditRecord, AuditStore, Checkpoint};

fn unavailable(e: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(e.to_string())
}

#[async_trait]
impl AuditStore for SqlCatalog {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), AuditError> {
        let mut tx = self.write_tx().await.map_err(unavailable)?;
        for r in records {
            sqlx::query(
                "INSERT INTO audit_events (writer, seq, at, recipient, share_name, table_name, \
                 body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.writer)
            .bind(r.seq)
            .bind(r.at_ms)
            .bind(&r.principal)
            .bind(&r.share)
            .bind(&r.table)
            .bind(&r.body)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn probe_audit(&self) -> Result<(), AuditError> {
        let mut tx = self.write_tx().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO audit_events (writer, seq, at, body, prev_hash, hash) \
             VALUES ('probe', -1, 0, '{}', '', '')",
        )
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.rollback().await.map_err(unavailable)
    }

    async fn append_checkpoint(&self, c: &Checkpoint) -> Result<(), AuditError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (writer, seq, hash, at, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.writer)
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at_ms)
        .bind(&c.key_id)
        .bind(&c.signature)
        .execute(self.pool())
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_records(&self) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = sqlx::query(
            "SELECT writer, seq, at, recipient, share_name, table_name, body, prev_hash, hash \
             FROM audit_events ORDER BY writer, seq",
        )
        .fetch_all(self.pool())
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let get = |e: sqlx::Error| AuditError::Invalid(db_err(e).to_string());
                Ok(AuditRecord {
                    writer: r.try_get("writer").map_err(get)?,
                    seq: r.try_get("seq").map_err(get)?,
                    at_ms: r.try_get("at").map_err(get)?,
                    principal: r.try_get("recipient").map_err(get)?,
                    share: r.try_get("share_name").map_err(get)?,
                    table: r.try_get("table_name").map_err(get)?,
                    body: r.try_get("body").map_err(get)?,
                    prev_hash: r.try_get("prev_hash").map_err(get)?,
                    hash: r.try_get("hash").map_err(get)?,
                })
            })
            .collect()
    }

    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let rows = sqlx::query(
            "SELECT writer, seq, hash, at, key_id, signature FROM audit_checkpoints \
             ORDER BY writer, seq",
        )
        .fetch_all(self.pool())
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let get = |e: sqlx::Error| AuditError::Invalid(db_err(e).to_string());
                Ok(Checkpoint {
                    writer: r.try_get("writer").map_err(get)?,
                    seq: r.try_get("seq").map_err(get)?,
                    hash: r.try_get("hash").map_err(get)?,
                    at_ms: r.try_get("at").map_err(get)?,
                    key_id: r.try_get("key_id").map_err(get)?,
                    signature: r.try_get("signature").map_err(get)?,
                })
            })
            .collect()
    }
}
