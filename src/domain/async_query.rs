//! State of asynchronous queries, behind a store trait so that replicas can share it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Where an async query is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncStatus {
    /// Still running.
    Pending,
    /// Finished; the result is served from the pinned version.
    Done,
    /// Failed with this message.
    Failed(String),
}

/// One async query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncQuery {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub recipient_id: String,
    /// Table id.
    pub table_id: String,
    /// The idempotency key it was submitted with.
    pub key: String,
    /// The submitted request body.
    pub body: Vec<u8>,
    /// Table version the result is pinned to.
    pub version: u64,
    /// Status.
    pub status: AsyncStatus,
    /// Submission time (ms).
    pub submitted_at_ms: i64,
    /// Completion time (ms).
    pub finished_at_ms: Option<i64>,
}

/// Outcome of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// A new query was registered; the caller must start it.
    Started(AsyncQuery),
    /// The same recipient already submitted this key: the existing query.
    Existing(AsyncQuery),
    /// The recipient has too many queries running.
    OverLimit,
}

/// The store failed (database unavailable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("async query store unavailable: {0}")]
pub struct AsyncStoreError(pub String);

/// Stores async queries. Implementations must make `submit` atomic per (recipient, key), and
/// may be shared by several replicas (the catalog implementations are).
#[async_trait::async_trait]
pub trait AsyncQueryStore: Send + Sync + std::fmt::Debug {
    /// Registers `query` unless its (recipient, key) exists, or the recipient already runs
    /// `max_running` queries. Expired entries (finished more than `ttl_ms` ago) are dropped.
    async fn submit(
        &self,
        query: AsyncQuery,
        max_running: usize,
        ttl_ms: i64,
    ) -> Result<Submission, AsyncStoreError>;
    /// Marks a query finished.
    async fn finish(
        &self,
        id: &str,
        status: AsyncStatus,
        now_ms: i64,
    ) -> Result<(), AsyncStoreError>;
    /// A query by id, unless it expired.
    async fn get(
        &self,
        id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<AsyncQuery>, AsyncStoreError>;
}

/// The in-process store (one replica).
#[derive(Debug, Default)]
pub struct InMemoryAsyncStore {
    queries: Mutex<HashMap<String, AsyncQuery>>,
}

fn expired(q: &AsyncQuery, now_ms: i64, ttl_ms: i64) -> bool {
    q.finished_at_ms
        .is_some_and(|f| now_ms >= f.saturating_add(ttl_ms))
}

#[async_trait::async_trait]
impl AsyncQueryStore for InMemoryAsyncStore {
    async fn submit(
        &self,
        query: AsyncQuery,
        max_running: usize,
        ttl_ms: i64,
    ) -> Result<Submission, AsyncStoreError> {
        let mut map = self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = query.submitted_at_ms;
        map.retain(|_, q| !expired(q, now, ttl_ms));
        if let Some(existing) = map
            .values()
            .find(|q| q.recipient_id == query.recipient_id && q.key == query.key)
        {
            return Ok(Submission::Existing(existing.clone()));
        }
        let running = map
            .values()
            .filter(|q| q.recipient_id == query.recipient_id && q.status == AsyncStatus::Pending)
            .count();
        if running >= max_running {
            return Ok(Submission::OverLimit);
        }
        map.insert(query.id.clone(), query.clone());
        Ok(Submission::Started(query))
    }

    async fn finish(
        &self,
        id: &str,
        status: AsyncStatus,
        now_ms: i64,
    ) -> Result<(), AsyncStoreError> {
        let mut map = self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(q) = map.get_mut(id) {
            q.status = status;
            q.finished_at_ms = Some(now_ms);
        }
        Ok(())
    }

    async fn get(
        &self,
        id: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<AsyncQuery>, AsyncStoreError> {
        let map = self
            .queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(map.get(id).filter(|q| !expired(q, now_ms, ttl_ms)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, r: &str, key: &str, at: i64) -> AsyncQuery {
        AsyncQuery {
            id: id.into(),
            recipient_id: r.into(),
            table_id: "t".into(),
            key: key.into(),
            body: b"{}".to_vec(),
            version: 1,
            status: AsyncStatus::Pending,
            submitted_at_ms: at,
            finished_at_ms: None,
        }
    }

    #[tokio::test]
    async fn dedupes_limits_and_expires() {
        let s = InMemoryAsyncStore::default();
        let ok = |r: Result<Submission, AsyncStoreError>| r.unwrap_or(Submission::OverLimit);
        assert!(matches!(
            ok(s.submit(q("1", "a", "k", 0), 1, 100).await),
            Submission::Started(_)
        ));
        assert!(matches!(
            ok(s.submit(q("2", "a", "k", 0), 1, 100).await),
            Submission::Existing(e) if e.id == "1"
        ));
        assert_eq!(
            ok(s.submit(q("3", "a", "k2", 0), 1, 100).await),
            Submission::OverLimit
        );
        assert!(matches!(
            ok(s.submit(q("4", "b", "k", 0), 1, 100).await),
            Submission::Started(_)
        ));
        assert!(s.finish("1", AsyncStatus::Done, 10).await.is_ok());
        assert!(s.get("1", 50, 100).await.ok().flatten().is_some());
        assert!(s.get("1", 110, 100).await.ok().flatten().is_none());
        assert!(matches!(
            ok(s.submit(q("5", "a", "k2", 20), 1, 100).await),
            Submission::Started(_)
        ));
    }
}
