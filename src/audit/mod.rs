//! The tamper-evident audit log: one event per recipient or admin request, hash-chained per
//! writer (each serving process is one writer, so replicas never serialise on one row), stored
//! append-only in the catalog database, with Ed25519-signed checkpoints over chain heads made
//! with a key that is not in the database.
//!
//! `event` is the record; `chain` the hashing, checkpoint messages and verification (pure);
//! `writer` appends events for one process; the `AuditStore` port is implemented by the
//! catalog.

pub mod alerts;
pub mod anomaly;
pub mod chain;
pub mod event;
pub mod vended;
pub mod writer;

use async_trait::async_trait;

pub use chain::{AuditRecord, Checkpoint};
pub use event::AuditEvent;

/// Audit storage errors.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store refused or is unreachable.
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
    /// A key or record is malformed.
    #[error("audit: {0}")]
    Invalid(String),
}

/// Where audit records and checkpoints live (append-only).
#[async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    /// Appends records (one transaction).
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), AuditError>;
    /// Checks that a record could be appended now (inserts one and rolls it back).
    async fn probe_audit(&self) -> Result<(), AuditError>;
    /// Appends a checkpoint.
    async fn append_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), AuditError>;
    /// All records, by writer and sequence.
    async fn audit_records(&self) -> Result<Vec<AuditRecord>, AuditError>;
    /// All checkpoints, by writer and sequence.
    async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError>;
}
