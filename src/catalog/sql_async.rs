//! Async query state in the SQL catalog (shared by replicas on PostgreSQL).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::SqlCatalog;
use crate::domain::async_query::{
    AsyncQuery, AsyncQueryStore, AsyncStatus, AsyncStoreError, Submission,
};

fn err(e: sqlx::Error) -> AsyncStoreError {
    AsyncStoreError(e.to_string())
}

fn status_parts(s: &AsyncStatus) -> (&'static str, Option<String>) {
    match s {
        AsyncStatus::Pending => ("pending", None),
        AsyncStatus::Done => ("done", None),
        AsyncStatus::Failed(m) => ("failed", Some(m.clone())),
    }
}

fn status_of(status: &str, error: Option<String>) -> AsyncStatus {
    match status {
        "pending" => AsyncStatus::Pending,
        "done" => AsyncStatus::Done,
        _ => AsyncStatus::Failed(error.unwrap_or_default()),
    }
}

fn row_to_query(r: &AnyRow) -> Result<AsyncQuery, AsyncStoreError> {
    Ok(AsyncQuery {
        id: r.try_get("id").map_err(err)?,
        recipient_id: r.try_get("recipient_id").map_err(err)?,
        table_id: r.try_get("table_id").map_err(err)?,
        key: r.try_get("idempotency_key").map_err(err)?,
        body: r.try_get("body").map_err(err)?,
        version: r.try_get::<i64, _>("version").map_err(err)? as u64,
        status: status_of(
            &r.try_get::<String, _>("status").map_err(err)?,
            r.try_get("error").map_err(err)?,
        ),
        submitted_at_ms: r.try_get("submitted_at").map_err(err)?,
        finished_at_ms: r.try_get("finished_at").map_err(err)?,
    })
}

const COLUMNS: &str = "id, recipient_id, table_id, idempotency_key, body, version, status, error, \
                       submitted_at, finished_at";

#[async_trait]
impl AsyncQueryStore for SqlCatalog {
    async fn submit(
        &self,
        query: AsyncQuery,
        max_running: usize,
        ttl_ms: i64,
    ) -> Result<Submission, AsyncStoreError> {
        let mut tx = self.write_tx().await.map_err(err)?;
        sqlx::query(
            "DELETE FROM async_queries WHERE finished_at IS NOT NULL AND finished_at + $1 <= $2",
        )
        .bind(ttl_ms)
        .bind(query.submitted_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        let existing = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM async_queries WHERE recipient_id = $1 AND idempotency_key = $2"
        ))
        .bind(&query.recipient_id)
        .bind(&query.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(err)?;
        if let Some(row) = existing {
            return Ok(Submission::Existing(row_to_query(&row)?));
        }
        let running: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM async_queries WHERE recipient_id = $1 AND status = 'pending'",
        )
        .bind(&query.recipient_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?
        .try_get("n")
        .map_err(err)?;
        if running as usize >= max_running {
            return Ok(Submission::OverLimit);
        }
        let (status, error) = status_parts(&query.status);
        let inserted = sqlx::query(&format!(
            "INSERT INTO async_queries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&query.id)
        .bind(&query.recipient_id)
        .bind(&query.table_id)
        .bind(&query.key)
        .bind(&query.body)
        .bind(query.version as i64)
        .bind(status)
        .bind(error)
        .bind(query.submitted_at_ms)
        .bind(query.finished_at_ms)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            // A concurrent submission of the same key (another replica) won the race.
            drop(tx);
            if let sqlx::Error::Database(d) = &e
                && d.is_unique_violation()
            {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM async_queries WHERE recipient_id = $1 AND idempotency_key = $2"
                ))
                .bind(&query.recipient_id)
                .bind(&query.key)
                .fetch_one(self.pool())
                .await
                .map_err(err)?;
                return Ok(Submission::Existing(row_to_query(&row)?));
            }
            return Err(err(e));
        }
        tx.commit().await.map_err(err)?;
        Ok(Submission::Started(query))
    }

    async fn finish(
        &self,
        id: &str,
        status: AsyncStatus,
        now_ms: i64,
    ) -> Result<(), AsyncStoreError> {
        let (status, error) = status_parts(&status);
        sqlx::query(
            "UPDATE async_queries SET status = $1, error = $2, finished_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(error)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn get(
        &self,
        id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<AsyncQuery>, AsyncStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM async_queries WHERE id = $1 \
             AND (finished_at IS NULL OR finished_at + $2 > $3)"
        ))
        .bind(id)
        .bind(ttl_ms)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await
        .map_err(err)?;
        row.as_ref().map(row_to_query).transpose()
    }
}
